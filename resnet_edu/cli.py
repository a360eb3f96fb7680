"""The command line ``python -m resnet_edu``: flags to a TrainConfig, a summary, ``fit``, the result.

    python -m resnet_edu --quick                      # minutes on a laptop CPU
    python -m resnet_edu --out runs/full              # the full recipe, for a GPU
    python -m resnet_edu --out runs/full --resume     # continue after an interruption
    torchrun --nproc_per_node=4 -m resnet_edu --out runs/ddp   # four GPUs, one machine

Flags left out keep the recipe's value (``--quick`` picks the "quick" recipe, else "full"); with
``--resume``, the configuration stored in the checkpoint. Every mistake that can be found before the
first step (flags, the output folder, the data, a checkpoint that does not fit) ends in one line and
exit code 2; a folder that already holds a run is never overwritten without ``--overwrite``.
Nothing in the package imports this module: ``resnet_edu/__main__.py`` calls :func:`main`.
"""

import argparse
import json
import os
import re
from dataclasses import fields, replace
from pathlib import Path

from .checkpoint import load_checkpoint
from .dataset import CorruptDataError, DataNotFoundError, load_cifar10
from .loaders import AUGMENTATIONS
from .resnet import BUILDERS, CIFAR_BUILDERS, STEMS
from .runtime import choose_device, choose_precision, device_name, is_main_process, process_count, teardown
from .train import (CHECKPOINT_NAME, LOADERS, METRICS_NAME, PRECISIONS, RECIPES, SCHEDULES, NonFiniteLossError,
                    TrainConfig, build_model, check_batch_size, fit)


def parser():
    p = argparse.ArgumentParser(prog="python -m resnet_edu",
                                description="Train a ResNet on CIFAR-10 (runs unchanged under torchrun).")
    p.add_argument("--quick", action="store_true", help="the quick recipe: ImageNet stem, 2 epochs, for a CPU")
    p.add_argument("--recipe", choices=sorted(RECIPES), help="start from this recipe (default: full)")
    p.add_argument("--model", choices=list(BUILDERS) + list(CIFAR_BUILDERS), metavar="MODEL",
                   help="resnet18 (default), resnet34 ... resnet152; or the paper's CIFAR-10 networks "
                        "resnet20 ... resnet110 and their plain twins plain20 ... plain110")
    p.add_argument("--stem", choices=STEMS)
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int, help="global batch size, split over the ranks")
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--label-smoothing", type=float)
    p.add_argument("--schedule", choices=SCHEDULES)
    p.add_argument("--augment", choices=AUGMENTATIONS)
    p.add_argument("--precision", choices=PRECISIONS)
    p.add_argument("--no-channels-last", dest="channels_last", action="store_false", default=None)
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    p.add_argument("--loader", choices=LOADERS)
    p.add_argument("--workers", dest="num_workers", type=int, help="DataLoader workers (--loader dataloader)")
    p.add_argument("--sync-bn", action="store_true", default=None, help="SyncBatchNorm under torchrun")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: cuda, else mps, else cpu)")
    p.add_argument("--data", help="CIFAR-10 tarball or ImageFolder directory (default: search, then download)")
    p.add_argument("--out", dest="out_dir",
                   help=f"output directory for checkpoint.pt and metrics.json (default: {DEFAULT_OUT}); a "
                        f"folder that holds a run is refused unless --resume or --overwrite")
    p.add_argument("--resume", nargs="?", const=True, default=None,
                   help="continue the run in OUT from OUT/checkpoint.pt (or from the checkpoint path given), "
                        "with the configuration stored in it")
    p.add_argument("--overwrite", action="store_true", help="replace the run that OUT holds with a new one")
    p.add_argument("--train-subset", type=int, help="train on this many images only (for trials)")
    p.add_argument("--test-subset", type=int, help="evaluate on this many test images only")
    p.add_argument("--eval-every", type=int, help="evaluate every N epochs (and after the last)")
    p.add_argument("--checkpoint-every", type=int, help="write the checkpoint every N epochs (and after the last)")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                   help="no progress bars and no line per epoch (the summary and the result still print)")
    return p


def flag_names(p):
    """{config field or argument name: its flag}, e.g. {"out_dir": "--out", "lr": "--lr"}."""
    return {a.dest: max(a.option_strings, key=len) for a in p._actions if a.option_strings}


def in_flag_terms(message, flags):
    """An error message with the config's field names replaced by the flags a user typed: names with an
    underscore anywhere (``out_dir`` -> ``--out``), plain words only where a rule follows ("lr must be")."""
    for name, flag in flags.items():
        follows = "" if "_" in name else r"(?= must be)"
        message = re.sub(rf"(?<![\w-]){name}(?![\w-]){follows}", flag, message)
    return message


DEFAULT_OUT = "runs/cifar10"
# What may differ from the checkpoint's configuration when a run continues: how long it trains, how
# often it evaluates and saves, and where and how fast it runs; not what it trains or how it learns.
MAY_CHANGE_ON_RESUME = ("epochs", "eval_every", "checkpoint_every", "progress", "device", "num_workers", "compile")
NOT_CONFIG = ("quick", "recipe", "data", "resume", "overwrite", "train_subset", "test_subset", "out_dir")


class UsageError(Exception):
    """A mistake in the command found before training starts; its message is the one line printed."""


def given_flags(args):
    """{config field: value} for the flags typed on the command line (the rest are None)."""
    return {k: v for k, v in vars(args).items() if v is not None and k not in NOT_CONFIG}


def config_from_args(args):
    name = args.recipe or ("quick" if args.quick else "full")
    return replace(RECIPES[name], live_plot=False, out_dir=args.out_dir or DEFAULT_OUT, **given_flags(args)), name


def main(argv=None):
    """Run the command line; a mistake in the flags or the data ends with one clear line, exit code 2."""
    p = parser()
    args = p.parse_args(argv)
    flags = flag_names(p)
    try:
        return run(args, flags)
    except (UsageError, ValueError, DataNotFoundError, CorruptDataError, FileNotFoundError) as error:
        message = in_flag_terms(str(error), flags).replace("the path argument", "--data")
        p.exit(2, f"{p.prog}: error: {message}\n")
    except NonFiniteLossError as error:  # not a mistake in the flags: the run itself went wrong
        p.exit(1, f"{p.prog}: training stopped: {in_flag_terms(str(error), flags)}\n")
    except KeyboardInterrupt:  # before fit started (fit itself ends cleanly on Ctrl-C)
        print(f"\nInterrupted before training started; nothing was written to {args.out_dir or DEFAULT_OUT}.",
              flush=True)
        return 130


def run(args, flags):
    """Check everything checkable, load the data, print the plan, train, print the result; 130 (as
    after Ctrl-C) if interrupted."""
    out = Path(args.out_dir or DEFAULT_OUT)
    if args.resume and args.overwrite:
        raise UsageError("--resume continues the run in --out and --overwrite replaces it: give one of them")
    if args.resume:
        config, name, state = resumed_config(args, flags, out)
        own = out / CHECKPOINT_NAME
        if isinstance(args.resume, str) and own.exists() and own.resolve() != Path(args.resume).resolve():
            raise UsageError(f"--out {out} already holds another run ({describe_run(out)}), which continuing "
                             f"{args.resume} there would replace: give another --out")
    else:
        config, name = config_from_args(args)
        state = None
        check_no_run_in(out, args.overwrite)
    check_writable(out)
    main_process = is_main_process()  # torchrun's rank 0, or the only process
    try:
        data = load_cifar10(args.data, verbose=main_process)
        if args.train_subset or args.test_subset:
            data = data.subset(args.train_subset, args.test_subset, seed=config.seed)
        check_batch_size(config, len(data.train_labels), process_count())
        model = build_model(config, num_classes=len(data.classes))
        if state is not None:
            check_checkpoint_fits(state, model, data, args)
        if main_process:
            if args.overwrite:  # the old run goes only now, when the new one is sure to start
                for old in (CHECKPOINT_NAME, METRICS_NAME):
                    (out / old).unlink(missing_ok=True)
            print_summary(config, name, data, state)
        resume = Path(args.resume) if isinstance(args.resume, str) else args.resume
        history = fit(model, data, config, resume=resume, how_to_resume=resume_command(args, out))
        if main_process:
            print_result(json.loads((out / METRICS_NAME).read_text()), config)
    finally:
        teardown()
    return 130 if history.status == "interrupted" else 0


def resume_command(args, out):
    """The command that continues this run, for the message after Ctrl-C."""
    words = ["python -m resnet_edu", "--out", str(out), "--resume"]
    for flag, value in (("--data", args.data), ("--train-subset", args.train_subset),
                        ("--test-subset", args.test_subset)):
        if value is not None:
            words += [flag, str(value)]
    return " ".join(words)


def describe_run(out):
    """A few words on the run in ``out``, from its metrics.json: "epoch 3 of 16, test accuracy 0.6815"."""
    try:
        summary = json.loads((out / METRICS_NAME).read_text())
        acc = summary["test_acc"]
        return (f"{summary['status']} after epoch {summary['epochs_done']} of {summary['config']['epochs']}"
                + (f", test accuracy {acc:.4f}" if acc is not None else ""))
    except (OSError, ValueError, KeyError, TypeError):
        return f"its {CHECKPOINT_NAME}"


def check_no_run_in(out, overwrite):
    """A new run needs a folder (not a file) that holds no run, unless --overwrite says to replace it."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder; name a folder for {CHECKPOINT_NAME} and "
                         f"{METRICS_NAME} (it is created if missing)")
    if (out / CHECKPOINT_NAME).exists() and not overwrite:
        raise UsageError(f"--out {out} already holds a run ({describe_run(out)}). Continue it with --resume, "
                         f"keep it and train into another --out, or replace it with --overwrite")


def check_writable(out):
    """Create ``out`` if needed and write (and delete) a file in it: a folder we cannot write to is
    found now, not after the first epoch."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder; name a folder for {CHECKPOINT_NAME} and "
                         f"{METRICS_NAME} (it is created if missing)")
    probe = out / f".write-test-{os.getpid()}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise UsageError(f"cannot write into --out {out}: {error.strerror or error}. Choose a folder you can "
                         f"write to") from None


def resumed_config(args, flags, out):
    """The configuration stored in the checkpoint, with the flags that may change on resume applied;
    a flag given again that disagrees with the checkpoint is named."""
    path = out / CHECKPOINT_NAME if args.resume is True else Path(args.resume)
    if not path.exists():
        where = f"in --out {out}" if args.resume is True else "at that path"
        raise UsageError(f"--resume found no checkpoint {where} ({path} does not exist). To start a new run "
                         f"there, leave out --resume; to continue another run, give its --out")
    try:
        state = load_checkpoint(path)
        stored = TrainConfig(**{f.name: state["config"][f.name] for f in fields(TrainConfig)
                                if f.name in state["config"]})
    except Exception as error:  # a damaged file, or not a checkpoint of this package
        raise UsageError(f"cannot read the checkpoint {path} ({type(error).__name__}: {error}); "
                         f"start a new run with another --out, or --overwrite") from None
    given = given_flags(args)
    disagree = [f"{flags[k]} {v} (the checkpoint has {getattr(stored, k)})" for k, v in given.items()
                if k not in MAY_CHANGE_ON_RESUME and v != getattr(stored, k)]
    if args.recipe or args.quick:
        name = args.recipe or "quick"
        differ = [f"{k} {getattr(RECIPES[name], k)!r}" for k in ("model", "stem", "batch_size", "lr", "augment")
                  if k not in given and getattr(RECIPES[name], k) != getattr(stored, k)]
        if differ:
            disagree.append(f"{'--quick' if args.quick else '--recipe ' + name} (the recipe has "
                            f"{', '.join(differ)}; the checkpoint does not)")
    if disagree:
        raise UsageError(f"--resume continues the run in {path} as it was configured, but these flags disagree "
                         f"with it: {'; '.join(disagree)}. Leave them out to continue the run, or start a new "
                         f"run with another --out. Only {', '.join(flags[k] for k in MAY_CHANGE_ON_RESUME)} "
                         f"may change on resume")
    changes = {k: v for k, v in given.items() if k in MAY_CHANGE_ON_RESUME}
    config = replace(stored, out_dir=str(out), live_plot=False, **changes)
    if config.epochs <= state["epoch"]:
        raise UsageError(f"the checkpoint {path} already holds epoch {state['epoch']} of {stored.epochs}, so "
                         f"there is nothing to continue; give --epochs more than {state['epoch']} to train on")
    return config, "as stored in the checkpoint", state


def check_checkpoint_fits(state, model, data, args):
    """The resumed run must see the data it trained on: the same classes and number of images."""
    stored_images = state.get("train_images")
    if stored_images is not None and stored_images != len(data.train_labels):
        raise UsageError(f"the checkpoint was trained on {stored_images:,} training images, but the data "
                         f"given now has {len(data.train_labels):,}: give the same --data and --train-subset "
                         f"as the run had")
    mismatched = [f"{k} {tuple(v.shape)} in the checkpoint, {tuple(model.state_dict()[k].shape)} in the model"
                  for k, v in state["model"].items() if k in model.state_dict()
                  and v.shape != model.state_dict()[k].shape]
    if mismatched or set(state["model"]) != set(model.state_dict()):
        detail = "; ".join(mismatched[:2]) or "different parameter names"
        raise UsageError(f"the checkpoint's weights do not fit this data's {len(data.classes)} classes "
                         f"({detail}): give the same --data as the run had")


def warn_about_cpu_time(config, data, epochs_left):
    """The CIFAR stem on a CPU takes hours: measure a few steps and say how long, before starting."""
    from .speed import measure_rung

    settings = dict(loader=config.loader, channels_last=config.channels_last, precision=config.precision,
                    compile=False)
    batch = min(config.batch_size, 64)
    speed = measure_rung(data, settings, model=config.model, stem=config.stem, batch_size=batch, steps=2,
                         device="cpu")["images_per_second"]
    hours = epochs_left * len(data.train_labels) / speed / 3600
    print(f"  warning   the {config.stem} stem on this CPU trains at about {speed:.0f} images/s, so "
          f"{epochs_left} epochs would take about {hours:.1f} hours. Use --quick for a run of minutes, "
          f"or a GPU; Ctrl-C stops (and --resume continues).", flush=True)


def print_summary(config, name, data, state=None):
    """The plan before training starts; on a CPU, a warning when the recipe would take hours."""
    device = choose_device(config.device)
    precision = choose_precision(device, config.precision)
    done = state["epoch"] if state else 0
    if state:
        print(f"Continuing {config.model} ({config.stem} stem) on CIFAR-10 after epoch {done} of {config.epochs}, "
              f"configuration {name}")
    else:
        print(f"Training {config.model} ({config.stem} stem) on CIFAR-10, recipe {name!r}")
    print(f"  data      {len(data.train_labels):,} training and {len(data.test_labels):,} test images "
          f"from {data.source}")
    print(f"  hardware  {device_name(device)} x {process_count()} process(es), precision {precision}, "
          f"channels_last {config.channels_last}, compile {config.compile}, loader {config.loader}")
    print(f"  schedule  {config.epochs} epochs, batch {config.batch_size}, {config.schedule} to lr {config.lr}, "
          f"weight decay {config.weight_decay}, label smoothing {config.label_smoothing}, augment {config.augment}")
    print(f"  output    {config.out_dir}/", flush=True)
    if device.type == "cpu" and config.stem == "cifar" and process_count() == 1:  # the probe trains alone
        warn_about_cpu_time(config, data, config.epochs - done)


def print_result(summary, config):
    """The outcome, with what is on disk now (a checkpoint is named only if there is one)."""
    acc = summary["test_acc"]
    acc_text = f"{acc:.4f}" if acc is not None else "none (no epoch was evaluated)"
    status = "stopped by Ctrl-C" if summary["status"] == "interrupted" else summary["status"]
    print(f"Done ({status}): {summary['epochs_done']} of {config.epochs} epochs in "
          f"{summary['train_seconds']:.1f} s of training; test accuracy {acc_text}")
    if summary["world_size"] > 1 and summary["status"] == "finished":
        print(f"  weights identical on all {summary['world_size']} ranks: {summary['ranks_identical']}")
    checkpoint = Path(config.out_dir) / CHECKPOINT_NAME
    saved = (f"{checkpoint}" if checkpoint.exists()
             else "none written (no epoch finished): nothing to resume, run the command again to start over")
    print(f"  metrics    {Path(config.out_dir) / METRICS_NAME}\n  checkpoint {saved}", flush=True)
