"""Render benchmark results (JSON) as Markdown, and put them into the README.

    python benchmarks/report.py            # rewrite the README's results section from benchmarks/results/*.json
"""

import json
import sys
from pathlib import Path

from resnet_edu.speed import ladder_table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
START, END = "<!-- benchmark results: start -->", "<!-- benchmark results: end -->"


def _mib(n):
    return f"{n / 2**20:,.0f} MiB"


def parity_table(rows):
    lines = [
        "| model | input | batch | precision | resnet_edu img/s (min-max) | torchvision img/s (min-max) "
        "| ratio | peak memory ours / theirs | achieved FLOP/s (share of measured peak) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ours, theirs = r["resnet_edu"], r["torchvision"]
        lines.append(
            f"| {r['model']} ({r['stem']} stem) | {r['image_size']}x{r['image_size']} | "
            f"{r['batch_size']} | {r['precision']} | "
            f"{ours['images_per_s']:,.1f} ({ours['images_per_s_min']:,.1f}-{ours['images_per_s_max']:,.1f}) | "
            f"{theirs['images_per_s']:,.1f} ({theirs['images_per_s_min']:,.1f}-{theirs['images_per_s_max']:,.1f}) | "
            f"{r['speed_ratio']:.3f} | {_mib(ours['peak_memory_bytes'])} / {_mib(theirs['peak_memory_bytes'])} | "
            f"{r['achieved_flops_per_s'] / 1e9:,.0f} GFLOP/s ({r['fraction_of_peak']:.0%}) |"
        )
    return "\n".join(lines)


def recipe_text(title, r):
    seeds = ", ".join(f"{a:.2%}" for a in r["test_accuracies"])
    target = r["target"]
    goal = f"at least {target['accuracy']:.0%} test accuracy"
    if "train_seconds" in target:
        goal += f" within {target['train_seconds']:.0f} s of training"
    compiling = f", of which compilation {r['median_warmup_seconds']:.0f} s" if r.get("median_warmup_seconds") else ""
    return (f"**{title}** ({r['recipe']}): test accuracy {r['mean_test_accuracy']:.2%} "
            f"(standard deviation {r['stdev_test_accuracy']:.2%}; seeds: {seeds}) on "
            f"{r['runs'][0].get('test_images', 10_000):,} test images; "
            f"training time {r['median_train_seconds']:.1f} s, total with "
            f"model building, compilation and evaluation {r['median_total_seconds']:.0f} s{compiling} (medians over "
            f"{len(r['runs'])} seeds; {_measured(r)}). Target, {goal}: "
            f"{'met' if r['target_met'] else 'NOT met'}.")


def _range(loop, which):
    speeds = [loop["images"] / s for s in loop["all_seconds"][which]]
    return f"{min(speeds):,.0f}-{max(speeds):,.0f}"


def _measured(part):
    return f"measured {part['date']} with torch {part['torch']}, torchvision {part['torchvision']}"


def render(result):
    """One results file as a Markdown section."""
    parts = [f"### {result['hardware']['description']}"]
    if result.get("note"):
        parts += ["", f"*{result['note']}*"]
    if result.get("parity"):
        p = result["parity"]
        parts += ["", f"**resnet_edu against torchvision**, one training step (forward, backward, SGD "
                  f"update) on the same weights and batch; {_measured(p)}. Medians over {p['repeats']} "
                  f"repeats of {p['steps']} steps after {p['warmup']} warm-up steps, min-max in brackets; "
                  "peak memory is the CUDA allocator's peak on a GPU and, on a CPU, the peak resident memory "
                  "of a fresh process above its size before building the model (coarse: allocator noise of "
                  f"tens of MiB); the measured peak is {p['peak_method']}.", "", parity_table(p["rows"])]
    if result.get("ladder"):
        p = result["ladder"]
        parts += ["", f"**Speed ladder of notebook 05** ({p['setting']}; {_measured(p)})", "",
                  ladder_table(p["rows"])]
    if result.get("loop"):
        p = result["loop"]
        parts += ["", f"**The trainer against a plain loop** ({p['recipe']} recipe's model, {p['stem']} stem, "
                  f"batch {p['batch_size']}, {p['precision']}, {p['images']:,} images per epoch, augmentation off; "
                  f"{p['device']}; medians of {p['repeats']} alternating epochs; {_measured(p)}): "
                  f"`resnet_edu.train.fit` {p['trainer_images_per_s']:,.0f} images/s ({_range(p, 'trainer')}), "
                  f"a plain PyTorch loop with torchvision's resnet18 {p['plain_loop_images_per_s']:,.0f} images/s "
                  f"({_range(p, 'plain loop')}), ratio {p['ratio']:.3f}."]
    if result.get("quick_mode"):
        parts += ["", recipe_text("CPU quick mode", result["quick_mode"])]
    for r in result.get("gpu_recipe") or []:
        parts += ["", recipe_text("GPU recipe", r)]
    for note in result.get("not_measured", []):
        parts += ["", f"Not measured here: {note}"]
    return "\n".join(parts)


def render_all(paths):
    return "\n\n".join(render(json.loads(Path(p).read_text())) for p in sorted(paths))


def update_readme(readme=ROOT / "README.md", results=RESULTS):
    text = readme.read_text()
    if START not in text or END not in text:
        sys.exit(f"{readme} has no results section: add the lines {START!r} and {END!r}")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    body = render_all(results.glob("*.json")) or "No results yet: run `python benchmarks/run.py`."
    readme.write_text(f"{head}{START}\n{body}\n{END}{tail}")


if __name__ == "__main__":
    update_readme()
