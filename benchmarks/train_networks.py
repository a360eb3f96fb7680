"""Train the four networks of the paper's Figure 6 (plain-20, plain-56, ResNet-20, ResNet-56) with
the course's own ``fit`` and one recipe for all four (``resnet_edu.train.RECIPES["paper"]``), and
store each in ``resnet_edu/trained_networks/`` (read by :mod:`resnet_edu.trained`).

    python benchmarks/train_networks.py                    # all four; a stopped run resumes
    python benchmarks/train_networks.py --epochs 40        # a longer schedule (a GPU's)
    python benchmarks/train_networks.py --only resnet20 --smoke --out /tmp/t   # check the harness

Choices are made on training images alone: 5,000 of the 50,000 are held out (the paper's
45,000/5,000 split) and every epoch reports the error on them. The 10,000 test images are used
once, at the end: the stored half-precision weights are evaluated in fp32, which any CPU
reproduces (tests/test_trained.py does). A checkpoint is written after every epoch into
``runs/train_networks/<name>/``; run the same command again after a stop and it continues there.
"""

import argparse
import datetime
import json
import platform
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from resnet_edu.dataset import data_label, load_cifar10
from resnet_edu.loaders import DeviceLoader
from resnet_edu.runtime import choose_device, choose_precision, device_name
from resnet_edu.trained import FOLDER, NETWORKS
from resnet_edu.train import build_model, evaluate, fit, recipe

ROOT = Path(__file__).resolve().parent.parent
HELD_OUT = 5000
SPLIT_SEED = 0


def commit():
    """The repository's commit, with "+changes" when the package differs from it."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    head = git("rev-parse", "HEAD") or "unknown"
    return head + ("+changes" if git("status", "--porcelain", "resnet_edu", "benchmarks") else "")


def train_one(name, data, split, args, device, code):
    config = recipe("paper", model=name, epochs=args.epochs, device=str(device), progress=False, live_plot=False,
                    out_dir=str(args.runs / name), **({"batch_size": 32, "eval_batch_size": 250} if args.smoke else {}))
    resume = (args.runs / name / "checkpoint.pt").exists()

    def log(epoch, h):
        print(f"{name} epoch {epoch}/{config.epochs}: training error {1 - h.train_acc[-1]:.2%}, held-out error "
              f"{1 - h.test_acc[-1]:.2%}, {h.seconds[-1]:.0f} s ({h.images_per_second[-1]:.0f} images/s)", flush=True)

    start = time.time()
    history = fit(build_model(config), split, config, resume=resume or None, callback=log)
    if history.status != "finished":
        sys.exit(f"{name} stopped at epoch {len(history)} ({history.status}); run the command again to continue")
    # The stored weights are the checkpoint's, in half precision; the test accuracy is theirs, in fp32.
    state = torch.load(args.runs / name / "checkpoint.pt", map_location="cpu", weights_only=True)["model"]
    half = {key: value.half() if value.is_floating_point() else value for key, value in state.items()}
    model = build_model(config)
    model.load_state_dict({key: value.float() if value.is_floating_point() else value for key, value in half.items()})
    test = DeviceLoader(data.test_images, data.test_labels, 500, train=False, device="cpu")
    test_loss, test_acc = evaluate(model.eval(), test, "fp32")
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(half, args.out / f"{name}.pt")
    hardware = device_name(device) + ("" if device.type == "cpu" else f", host {device_name('cpu')}")
    record = {
        "network": name,
        "history": {"epoch": history.epoch, "train_error": [1 - a for a in history.train_acc],
                    "held_out_error": [1 - a for a in history.test_acc], "train_loss": history.train_loss,
                    "held_out_loss": history.test_loss, "lr": history.lr, "seconds": history.seconds,
                    "images_per_second": history.images_per_second},
        "test": {"accuracy": float(test_acc), "loss": float(test_loss), "images": len(data.test_labels),
                 "precision": "fp32", "weights": "half precision (the stored file)"},
        "provenance": {
            "data": data_label(data.source), "train_images": len(split.train_labels),
            "held_out_images": len(split.test_labels), "split_seed": SPLIT_SEED,
            "hardware": hardware, "precision": choose_precision(device, config.precision),
            "torch": torch.__version__, "python": platform.python_version(), "commit": code,
            "seed": config.seed, "recipe": {k: v for k, v in asdict(config).items()
                                            if k not in ("out_dir", "progress", "live_plot", "device")},
            "train_seconds": sum(history.seconds), "finished": datetime.datetime.now().isoformat(timespec="seconds"),
            "resumed": resume, "wall_seconds_last_sitting": time.time() - start,
            "smoke": args.smoke},
    }
    (args.out / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"{name}: test accuracy {test_acc:.2%} on {len(data.test_labels):,} test images "
          f"({record['provenance']['data']}); stored in {args.out}", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=NETWORKS, action="append", help="train only these (repeatable)")
    parser.add_argument("--epochs", type=int, default=recipe("paper").epochs)
    parser.add_argument("--data", help="CIFAR-10 tarball or folder (default: resnet_edu.dataset's search)")
    parser.add_argument("--out", type=Path, default=FOLDER, help="where the stored files go")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "train_networks", help="checkpoints")
    parser.add_argument("--smoke", action="store_true", help="1,000 images, to check the harness in seconds")
    args = parser.parse_args(argv)
    device = choose_device()
    code = commit()  # at the start: the code that trains, whatever is committed while it runs
    data = load_cifar10(args.data, verbose=False)
    if args.smoke:
        data = data.subset(train=1000, test=500)
    split = data.validation_split(HELD_OUT // 10 if args.smoke else HELD_OUT, seed=SPLIT_SEED)
    print(f"{device_name(device)}, {choose_precision(device)}; {len(split.train_labels):,} training images, "
          f"{len(split.test_labels):,} held out, {args.epochs} epochs", flush=True)
    for name in args.only or NETWORKS:
        train_one(name, data, split, args, device, code)


if __name__ == "__main__":
    main()
