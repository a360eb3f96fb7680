"""What a learner watches while :func:`resnet_edu.train.fit` trains: a progress bar per epoch, one
line per finished epoch, the live plot, and what to do after Ctrl-C.

The training loop calls a :class:`Reporter` at fixed moments and never formats anything itself.
Only rank 0 of a torchrun job reports (``enabled=False`` elsewhere makes every call do nothing).
"""


BAR_UPDATES = 50  # at most about this many redraws of an epoch's bar: in Jupyter each is a message to the
# front end, and a client that reads them only after a long cell (nbval) keeps about 1,000 before dropping
# later ones, the cell's last output among them, on a slow CPU's long epoch


class Reporter:
    """Progress bars and epoch lines (``config.progress``) and the live plot (``config.live_plot``);
    with both switched off it says only what to do after Ctrl-C. ``checkpoint`` is where the run
    saves (None: nowhere) and ``how_to_resume`` the words for continuing, for that message."""

    def __init__(self, config, precision, checkpoint=None, enabled=True, how_to_resume=None):
        self.config, self.checkpoint, self.enabled = config, checkpoint, enabled
        self.how_to_resume = how_to_resume or "fit(..., resume=True)"
        self.bar, self.live_plot, self.saved_epoch = None, None, None
        if enabled and config.live_plot:
            from .pictures.plots import LivePlot  # matplotlib only when a plot is wanted

            self.live_plot = LivePlot(title=f"{config.model}, {config.stem} stem, {precision}")

    @property
    def printing(self):
        return self.enabled and self.config.progress

    def resumed(self, path, epoch):
        if path == self.checkpoint:
            self.saved_epoch = epoch
        if self.printing:
            print(f"Resumed from {path} after epoch {epoch} of {self.config.epochs}.")

    def start_epoch(self, epoch, steps):
        if self.printing:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=steps, desc=f"epoch {epoch + 1}/{self.config.epochs}", leave=False,
                            miniters=max(1, steps // BAR_UPDATES), mininterval=0.5)

    def step(self):
        if self.bar is not None:
            self.bar.update(1)

    def saved(self, epoch):
        self.saved_epoch = epoch

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def end_epoch(self, history):
        self.close()
        if self.live_plot is not None and history.test_acc[-1] is not None:
            self.live_plot.update(history)
        if self.printing:
            print(epoch_line(history, self.config.epochs), flush=True)

    def interrupted(self, history):
        self.close()
        if not self.enabled:
            return
        print("\n" + interruption_note(history, self.config.epochs, self.checkpoint, self.saved_epoch,
                                        self.how_to_resume))


def interruption_note(history, epochs, checkpoint, saved_epoch, how_to_resume):
    """What Ctrl-C left: the epochs finished, the training time, what is on disk, what to do next."""
    seconds = sum(history.seconds) + history.unfinished_seconds
    done = f"Interrupted after {len(history)} finished epoch(s) of {epochs} ({seconds:.1f} s of training)"
    if checkpoint is None:
        return f"{done}; nothing was saved (no out_dir was given, so no checkpoint is written)."
    if not saved_epoch:
        return f"{done}; no checkpoint has been written yet, so there is nothing to resume: start again."
    return f"{done}; the checkpoint {checkpoint} holds epoch {saved_epoch}. Continue with {how_to_resume}."


def epoch_line(history, epochs):
    """The last epoch in one line: training loss and accuracy, test results (if evaluated), speed."""
    test = (f"test loss {history.test_loss[-1]:.3f} acc {history.test_acc[-1]:.3f}" if history.test_acc[-1] is not None
            else "test not evaluated")
    return (f"epoch {history.epoch[-1]:>3}/{epochs}  train loss {history.train_loss[-1]:.3f} "
            f"acc {history.train_acc[-1]:.3f}  {test}  {history.seconds[-1]:.1f} s "
            f"({history.images_per_second[-1]:.0f} images/s)")
