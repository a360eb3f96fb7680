"""Time-to-accuracy of the course's own recipes (notebook 05's trainer, resnet_edu.train.fit).

quick:  the CPU quick mode, judged against its target (at least 60% test accuracy on the full
        CIFAR-10 test set within 180 s of training on 2 CPU cores).
full:   the GPU recipe (CIFAR stem, torch.compile), judged against 94% test accuracy; evaluated
        only after the last epoch, compiled before the clock starts (compilation reported apart).

Each seed is a separate run from scratch; training time is what fit() measures per epoch (the
training loop alone); total time is the wall clock from building the model to the last
evaluation, compilation and evaluation included.
"""

import statistics
import time

from resnet_edu.train import build_model, fit, recipe

TARGETS = {"quick": {"accuracy": 0.60, "train_seconds": 180.0}, "full": {"accuracy": 0.94}}


def run_recipe(name, data, seeds, **overrides):
    """Train the recipe once per seed; return per-seed figures and their summary."""
    runs = []
    for seed in seeds:
        config = recipe(name, seed=seed, progress=False, live_plot=False, **overrides)
        start = time.perf_counter()
        history = fit(build_model(config), data, config)
        total = time.perf_counter() - start
        runs.append({"seed": seed, "test_accuracy": history.test_acc[-1], "test_images": len(data.test_labels),
                     "train_seconds": sum(history.seconds), "total_seconds": total,
                     "warmup_seconds": history.warmup_seconds, "epochs": len(history)})
        print(f"{name} seed {seed}: {history.test_acc[-1]:.2%} test accuracy, "
              f"{sum(history.seconds):.1f} s training, {history.warmup_seconds:.0f} s compiling, "
              f"{total:.0f} s in all", flush=True)
    return summarise(name, config, runs)


def run_gpu_recipe(data, seeds, epoch_counts, budget_seconds, **overrides):
    """The full recipe with torch.compile, evaluated once at the end, for each epoch count in turn
    while the budget lasts (a count is started only if its estimated time fits what is left)."""
    results, start, per_epoch, setup = [], time.perf_counter(), None, 0.0
    for epochs in epoch_counts:
        left = budget_seconds - (time.perf_counter() - start)
        needed = (setup + per_epoch * epochs) * len(seeds) if per_epoch is not None else 0
        if needed > left:
            print(f"skipping {epochs} epochs: about {needed:.0f} s needed, {left:.0f} s left", flush=True)
            continue
        settings = dict(dict(compile=True), **overrides)
        result = run_recipe("full", data, seeds, epochs=epochs, eval_every=epochs, checkpoint_every=epochs, **settings)
        results.append(result)
        per_epoch = max(r["train_seconds"] for r in result["runs"]) / epochs
        setup = max(r["total_seconds"] - r["train_seconds"] for r in result["runs"])  # compiling, evaluating
    return results


def summarise(name, config, runs):
    accuracies = [r["test_accuracy"] for r in runs]
    train = [r["train_seconds"] for r in runs]
    result = {
        "recipe": f"{name}: {config.model}, {config.stem} stem, {config.epochs} epochs, batch "
                  f"{config.batch_size}, peak lr {config.lr}, augment {config.augment}"
                  f"{', zero-init residuals' if config.zero_init_residual else ''}"
                  f"{', flip TTA' if config.tta else ''}{', torch.compile' if config.compile else ''}",
        "epochs": config.epochs,
        "runs": runs,
        "test_accuracies": accuracies,
        "mean_test_accuracy": statistics.mean(accuracies),
        "min_test_accuracy": min(accuracies),
        "stdev_test_accuracy": statistics.stdev(accuracies) if len(runs) > 1 else 0.0,
        "median_train_seconds": statistics.median(train),
        "median_total_seconds": statistics.median(r["total_seconds"] for r in runs),
        "median_warmup_seconds": statistics.median(r["warmup_seconds"] for r in runs),
    }
    target = TARGETS[name]
    met = all(a >= target["accuracy"] for a in accuracies)
    if "train_seconds" in target:
        met = met and all(t <= target["train_seconds"] for t in train)
    result["target"] = target
    result["target_met"] = met
    return result
