"""The command line ``python -m resnet_edu``: flags to a TrainConfig, a summary, ``fit``, the result.

    python -m resnet_edu --quick                      # minutes on a laptop CPU
    python -m resnet_edu --out runs/full              # the full recipe, for a GPU
    python -m resnet_edu --out runs/full --resume     # continue after an interruption
    torchrun --nproc_per_node=4 -m resnet_edu --out runs/ddp   # four GPUs, one machine

Flags left out keep the recipe's value (``--quick`` picks the "quick" recipe, else "full").
Nothing in the package imports this module: ``resnet_edu/__main__.py`` calls :func:`main`.
"""

import argparse
import json
import re
from dataclasses import replace
from pathlib import Path

from .dataset import CorruptDataError, DataNotFoundError, load_cifar10
from .runtime import choose_device, choose_precision, device_name, is_main_process, process_count, teardown
from .loaders import AUGMENTATIONS
from .resnet import BUILDERS, CIFAR_BUILDERS, STEMS
from .train import (CHECKPOINT_NAME, LOADERS, METRICS_NAME, PRECISIONS, RECIPES, SCHEDULES, NonFiniteLossError,
                    build_model, fit)


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
    p.add_argument("--out", dest="out_dir", default="runs/cifar10",
                   help="output directory for checkpoint.pt and metrics.json (default: runs/cifar10)")
    p.add_argument("--resume", nargs="?", const=True, default=None,
                   help="continue from OUT/checkpoint.pt, or from the checkpoint path given")
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


def config_from_args(args):
    name = args.recipe or ("quick" if args.quick else "full")
    overrides = {k: v for k, v in vars(args).items()
                 if v is not None and k not in ("quick", "recipe", "data", "resume", "train_subset", "test_subset")}
    return replace(RECIPES[name], live_plot=False, **overrides), name


def main(argv=None):
    """Run the command line; a mistake in the flags or the data ends with one clear line, exit code 2."""
    p = parser()
    args = p.parse_args(argv)
    try:
        config, name = config_from_args(args)
        return run(config, name, args)
    except (ValueError, DataNotFoundError, CorruptDataError, FileNotFoundError) as error:
        message = in_flag_terms(str(error), flag_names(p)).replace("the path argument", "--data")
        p.exit(2, f"{p.prog}: error: {message}\n")
    except NonFiniteLossError as error:  # not a mistake in the flags: the run itself went wrong
        p.exit(1, f"{p.prog}: training stopped: {in_flag_terms(str(error), flag_names(p))}\n")


def run(config, name, args):
    """Load the data, print the plan, train, print the result; 130 (as after Ctrl-C) if interrupted."""
    main_process = is_main_process()  # torchrun's rank 0, or the only process
    try:
        data = load_cifar10(args.data, verbose=main_process)
        if args.train_subset or args.test_subset:
            data = data.subset(args.train_subset, args.test_subset, seed=config.seed)
        if main_process:
            print_summary(config, name, data)
        history = fit(build_model(config, num_classes=len(data.classes)), data, config, resume=args.resume)
        if main_process:
            print_result(json.loads((Path(config.out_dir) / METRICS_NAME).read_text()), config)
    finally:
        teardown()
    return 130 if history.status == "interrupted" else 0


def warn_about_cpu_time(config, data):
    """The CIFAR stem on a CPU takes hours: measure a few steps and say how long, before starting."""
    from .speed import measure_rung

    settings = dict(loader=config.loader, channels_last=config.channels_last, precision=config.precision,
                    compile=False)
    batch = min(config.batch_size, 64)
    speed = measure_rung(data, settings, model=config.model, stem=config.stem, batch_size=batch, steps=2,
                         device="cpu")["images_per_second"]
    hours = config.epochs * len(data.train_labels) / speed / 3600
    print(f"  warning   the {config.stem} stem on this CPU trains at about {speed:.0f} images/s, so "
          f"{config.epochs} epochs would take about {hours:.1f} hours. Use --quick for a run of minutes, "
          f"or a GPU; Ctrl-C stops (and --resume continues).", flush=True)


def print_summary(config, name, data):
    """The plan before training starts; on a CPU, a warning when the recipe would take hours."""
    device = choose_device(config.device)
    precision = choose_precision(device, config.precision)
    print(f"Training {config.model} ({config.stem} stem) on CIFAR-10, recipe {name!r}")
    print(f"  data      {len(data.train_labels):,} training and {len(data.test_labels):,} test images "
          f"from {data.source}")
    print(f"  hardware  {device_name(device)} x {process_count()} process(es), precision {precision}, "
          f"channels_last {config.channels_last}, compile {config.compile}, loader {config.loader}")
    print(f"  schedule  {config.epochs} epochs, batch {config.batch_size}, {config.schedule} to lr {config.lr}, "
          f"weight decay {config.weight_decay}, label smoothing {config.label_smoothing}, augment {config.augment}")
    print(f"  output    {config.out_dir}/", flush=True)
    if device.type == "cpu" and config.stem == "cifar" and process_count() == 1:  # the probe trains alone
        warn_about_cpu_time(config, data)


def print_result(summary, config):
    acc = summary["test_acc"]
    acc_text = f"{acc:.4f}" if acc is not None else "none (no epoch finished)"
    print(f"Done ({summary['status']}): {summary['epochs_done']} of {config.epochs} epochs in "
          f"{summary['train_seconds']:.1f} s of training; test accuracy {acc_text}")
    if summary["world_size"] > 1:
        print(f"  weights identical on all {summary['world_size']} ranks: {summary['ranks_identical']}")
    print(f"  metrics   {config.out_dir}/{METRICS_NAME}\n  checkpoint {config.out_dir}/{CHECKPOINT_NAME}", flush=True)
