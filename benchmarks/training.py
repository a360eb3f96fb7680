"""Time-to-accuracy of the course's own recipes (notebook 05's trainer, resnet_edu.train.fit).

quick:  the CPU quick mode, judged against its target (at least 60% test accuracy on the full
        CIFAR-10 test set within 180 s of training on 2 CPU cores).
full:   the GPU recipe (CIFAR stem, torch.compile), judged against 94% test accuracy.

Each seed is a separate run from scratch; training time is what fit() measures per epoch (the
training loop alone), total time is the wall clock from building the model to the last
evaluation, including torch.compile's compilation and every epoch's evaluation.
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
        runs.append({"seed": seed, "test_accuracy": history.test_acc[-1],
                     "train_seconds": sum(history.seconds), "total_seconds": total,
                     "epochs": len(history)})
        print(f"{name} seed {seed}: {history.test_acc[-1]:.2%} test accuracy, "
              f"{sum(history.seconds):.0f} s training, {total:.0f} s in all", flush=True)
    return summarise(name, config, runs)


def summarise(name, config, runs):
    accuracies = [r["test_accuracy"] for r in runs]
    train = [r["train_seconds"] for r in runs]
    result = {
        "recipe": f"{name}: {config.model}, {config.stem} stem, {config.epochs} epochs, batch "
                  f"{config.batch_size}, peak lr {config.lr}, augment {config.augment}"
                  f"{', torch.compile' if config.compile else ''}",
        "runs": runs,
        "test_accuracies": accuracies,
        "mean_test_accuracy": statistics.mean(accuracies),
        "stdev_test_accuracy": statistics.stdev(accuracies) if len(runs) > 1 else 0.0,
        "median_train_seconds": statistics.median(train),
        "median_total_seconds": statistics.median(r["total_seconds"] for r in runs),
    }
    target = TARGETS[name]
    met = all(a >= target["accuracy"] for a in accuracies)
    if "train_seconds" in target:
        met = met and all(t <= target["train_seconds"] for t in train)
    result["target"] = target
    result["target_met"] = met
    return result
