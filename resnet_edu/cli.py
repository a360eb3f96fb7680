"""The command line of ``python -m resnet_edu.train`` (this module holds its parsing and summary).

    python -m resnet_edu.train --quick                      # minutes on a laptop CPU
    python -m resnet_edu.train --out runs/full              # the full recipe, for a GPU
    python -m resnet_edu.train --out runs/full --resume     # continue after an interruption
    torchrun --nproc_per_node=4 -m resnet_edu.train --out runs/ddp   # four GPUs, one machine

Flags left out keep the recipe's value (``--quick`` picks the "quick" recipe, else "full").
"""

import argparse
import re
import sys
from dataclasses import replace

from . import distributed
from .data import CorruptDataError, DataNotFoundError, load_cifar10
from .runtime import choose_precision, device_name
from .train import METRICS_NAME, PRECISIONS, RECIPES, build_model, fit, write_metrics


def parser():
    p = argparse.ArgumentParser(prog="python -m resnet_edu.train",
                                description="Train a ResNet on CIFAR-10 (runs unchanged under torchrun).")
    p.add_argument("--quick", action="store_true", help="the quick recipe: ImageNet stem, 2 epochs, for a CPU")
    p.add_argument("--recipe", choices=sorted(RECIPES), help="start from this recipe (default: full)")
    p.add_argument("--model", help="resnet18 (default), resnet34, resnet50, ...")
    p.add_argument("--stem", choices=["cifar", "imagenet"])
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int, help="global batch size, split over the ranks")
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--label-smoothing", type=float)
    p.add_argument("--schedule", choices=["onecycle", "cosine"])
    p.add_argument("--augment", choices=["crop+flip", "flip", "none"])
    p.add_argument("--precision", choices=PRECISIONS)
    p.add_argument("--no-channels-last", dest="channels_last", action="store_false", default=None)
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    p.add_argument("--loader", choices=["device", "dataloader"])
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
    p.add_argument("--no-progress", dest="progress", action="store_false", default=None)
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
        return train(config, name, args)
    except (ValueError, DataNotFoundError, CorruptDataError, FileNotFoundError) as error:
        message = in_flag_terms(str(error), flag_names(p)).replace("the path argument", "--data")
        p.exit(2, f"{p.prog}: error: {message}\n")


def train(config, name, args):
    device, rank, world_size = distributed.setup(config.device)
    main_rank = rank == 0
    history = None
    try:
        data = load_cifar10(args.data, verbose=main_rank)
        if args.train_subset or args.test_subset:
            data = data.subset(args.train_subset, args.test_subset, seed=config.seed)
        if main_rank:
            print_summary(config, name, data, device, world_size)
            if device.type == "cpu" and config.stem == "cifar":
                warn_about_cpu_time(config, data)
        model = build_model(config, num_classes=len(data.classes))
        history = fit(model, data, config, resume=args.resume)
        digests = distributed.digests_across_ranks(model)
        if main_rank:
            precision = choose_precision(device, config.precision)
            summary = write_metrics(
                f"{config.out_dir}/{METRICS_NAME}", history, config, precision, device, world_size,
                recipe=name, data=data.source, train_images=len(data.train_labels),
                test_images=len(data.test_labels), weight_digests=digests,
                ranks_identical=len(set(digests)) == 1)
            print_result(summary, config)
    finally:
        distributed.teardown()
    return 130 if history is not None and history.status == "interrupted" else 0


def warn_about_cpu_time(config, data):
    """The CIFAR stem on a CPU takes hours: measure a few steps and say how long, before starting."""
    from .speed import measure_rung

    settings = dict(loader=config.loader, channels_last=config.channels_last, precision=config.precision,
                    compile=False)
    batch = min(config.batch_size, 64)
    speed = measure_rung(data, settings, model=config.model, stem=config.stem, batch_size=batch, steps=2,
                         warmup=1, device="cpu")["images_per_second"]
    hours = config.epochs * len(data.train_labels) / speed / 3600
    print(f"  warning   the {config.stem} stem on this CPU trains at about {speed:.0f} images/s, so "
          f"{config.epochs} epochs would take about {hours:.1f} hours. Use --quick for a run of minutes, "
          f"or a GPU; Ctrl-C stops (and --resume continues).", flush=True)


def print_summary(config, name, data, device, world_size):
    precision = choose_precision(device, config.precision)
    print(f"Training {config.model} ({config.stem} stem) on CIFAR-10, recipe {name!r}")
    print(f"  data      {len(data.train_labels):,} training and {len(data.test_labels):,} test images "
          f"from {data.source}")
    print(f"  hardware  {device_name(device)} x {world_size} process(es), precision {precision}, "
          f"channels_last {config.channels_last}, compile {config.compile}, loader {config.loader}")
    print(f"  schedule  {config.epochs} epochs, batch {config.batch_size}, {config.schedule} to lr {config.lr}, "
          f"weight decay {config.weight_decay}, label smoothing {config.label_smoothing}, augment {config.augment}")
    print(f"  output    {config.out_dir}/", flush=True)


def print_result(summary, config):
    acc = summary["test_acc"]
    acc_text = f"{acc:.4f}" if acc is not None else "none (no epoch finished)"
    print(f"Done ({summary['status']}): {summary['epochs_done']} of {config.epochs} epochs in "
          f"{summary['train_seconds']:.1f} s of training; test accuracy {acc_text}")
    if summary["world_size"] > 1:
        print(f"  weights identical on all {summary['world_size']} ranks: {summary['ranks_identical']}")
    print(f"  metrics   {config.out_dir}/{METRICS_NAME}\n  checkpoint {config.out_dir}/checkpoint.pt", flush=True)


if __name__ == "__main__":
    sys.exit(main())
