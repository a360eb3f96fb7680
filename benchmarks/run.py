"""Measure the course's speed claims on this machine and save them with the hardware named.

    python benchmarks/run.py                 # everything this machine can run (a few minutes on 2 CPU cores)
    python benchmarks/run.py --only parity   # one part

Parts: `parity` (resnet_edu against torchvision, every device), `ladder` (notebook 05's speed
ladder), `loop` (the trainer against a plain PyTorch loop), `quick` (the CPU quick-mode recipe:
time and accuracy), `recipe` (the GPU recipe to 94% on CIFAR-10, several seeds and epoch counts;
GPU only). Writes benchmarks/results/<hardware>.json and .md, then rewrites the README's results
section from every results file. benchmarks/gpu_check.sh runs the GPU parts in about 10 minutes.
"""

import argparse
import datetime
import json
import os
import re
import sys
from pathlib import Path

import torch
import torchvision

sys.path.insert(0, str(Path(__file__).parent))
import loop  # noqa: E402
import parity  # noqa: E402
import report  # noqa: E402
import training  # noqa: E402

from resnet_edu.dataset import load_cifar10  # noqa: E402
from resnet_edu.speed import speed_ladder, synthetic_data  # noqa: E402
from resnet_edu.runtime import device_name  # noqa: E402

RESULTS = Path(__file__).parent / "results"
PARTS = ["parity", "ladder", "loop", "quick", "recipe"]
MEASUREMENTS = ["parity", "ladder", "loop", "quick_mode", "gpu_recipe"]


def hardware():
    cpu = device_name("cpu")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    description = f"{torch.cuda.device_count()} x {gpu}, host {cpu}" if gpu else f"{cpu}, no GPU"
    slug = re.sub(r"[^a-z0-9]+", "-", (gpu or cpu).lower()).strip("-")
    return {"description": description, "gpu": gpu, "cpu": cpu, "cores": os.cpu_count(),
            "threads": torch.get_num_threads(), "slug": slug}


def devices(names=None):
    found = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    return [d for d in found if names is None or d.type in names]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=PARTS, action="append",
                        help="run only these parts (repeatable); default: all")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=3, help="training steps per timed repeat")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=3, help="training runs per recipe")
    parser.add_argument("--devices", nargs="+", choices=["cpu", "cuda"], help="parity on these only (default: all)")
    parser.add_argument("--epochs", type=int, nargs="+", default=[16, 12, 20],
                        help="GPU recipe: epoch counts to try in turn, while --budget lasts")
    parser.add_argument("--budget", type=float, default=300, help="GPU recipe: seconds for all epoch counts")
    parser.add_argument("--data", help="CIFAR-10 tarball or folder (default: resnet_edu.dataset's search)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--note", help="a sentence saved with the results and shown in the report (how the "
                                       "machine was set up, e.g. kernels limited with ATEN_CPU_CAPABILITY)")
    parser.add_argument("--smoke", action="store_true",
                        help="a seconds-long run on tiny batches to check the harness "
                             "(results not saved to the README)")
    args = parser.parse_args(argv)
    parts = set(args.only or PARTS)
    gpu = torch.cuda.is_available()

    hw = hardware()
    stamp = {"date": datetime.date.today().isoformat(), "torch": torch.__version__,
             "torchvision": torchvision.__version__}
    result = {"hardware": hw, "not_measured": [], **({"note": args.note} if args.note else {})}
    if not gpu:
        result["not_measured"].append(
            "GPU figures (no GPU on this machine): GPU throughput and memory, the GPU rungs of the "
            "speed ladder (GPU-resident data, mixed precision, torch.compile on a GPU), and the GPU "
            "recipe to 94% on CIFAR-10.")

    if "parity" in parts:
        configs = parity.CONFIGS[1:2] if args.smoke else parity.CONFIGS
        rows = parity.run(devices(args.devices), args.repeats, args.steps, args.warmup, configs,
                          batch_size=4 if args.smoke else None)
        result["parity"] = dict(stamp, repeats=args.repeats, steps=args.steps, warmup=args.warmup, rows=rows,
                                peak_method=parity.PEAK_METHOD)

    if "ladder" in parts:
        device = "cuda" if gpu else "cpu"
        sizes = dict(batch_size=32, steps=2) if args.smoke else \
            dict(batch_size=512 if gpu else 128, steps=args.steps * (10 if gpu else 2))
        stem = training.recipe("full" if gpu else "quick").stem  # as notebook 05 does
        setting = f"resnet18, {stem} stem, 32x32, batch {sizes['batch_size']}, {device_name(device)}"
        rows = speed_ladder(None, device=device, stem=stem, repeats=3, **sizes)
        result["ladder"] = dict(stamp, setting=setting, rows=rows)

    seeds = range(1 if args.smoke else args.seeds)
    if args.smoke:  # the harness on any machine: synthetic images, one short epoch, no compilation
        data, device, small = synthetic_data(256), torch.device("cpu"), dict(batch_size=32, stem="imagenet")
    else:
        needed = parts & {"loop", "quick"} or (parts & {"recipe"} and gpu)
        data, device, small = load_cifar10(args.data, verbose=False) if needed else None, devices()[-1], {}
    if "loop" in parts:
        subset = data.subset(train=128 if args.smoke else 8192 if gpu else 3840, test=1000)
        result["loop"] = dict(stamp, device=device_name(device),
                              **loop.compare(subset, "full" if gpu else "quick", device, **small))
    if "quick" in parts and not args.smoke:
        result["quick_mode"] = dict(stamp, **training.run_recipe("quick", data, seeds, device="cpu"))
    if "recipe" in parts and (gpu or args.smoke):
        overrides = dict(small, compile=False, device="cpu") if args.smoke else {}
        result["gpu_recipe"] = [dict(stamp, **r) for r in training.run_gpu_recipe(
            data, seeds, [1] if args.smoke else args.epochs, args.budget, **overrides)]

    args.out.mkdir(parents=True, exist_ok=True)
    name = ("smoke-" if args.smoke else "") + hw["slug"]
    path = args.out / f"{name}.json"
    if path.exists():  # keep the parts measured earlier on this hardware that this run did not repeat
        earlier = json.loads(path.read_text())
        result = {**{k: v for k, v in earlier.items() if k in MEASUREMENTS}, **result}
        result["not_measured"] = result["not_measured"] or earlier.get("not_measured", [])
    path.write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{name}.md").write_text(report.render(result) + "\n")
    print(f"wrote {args.out / name}.json and .md")
    if not args.smoke and args.out == RESULTS:
        report.update_readme()
    return result


if __name__ == "__main__":
    main()
