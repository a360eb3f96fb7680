"""The four networks of the paper's Figure 6 (plain-20, plain-56, ResNet-20, ResNet-56), trained
once with one recipe and stored with their history and provenance, so that a notebook can show
trained results without training them.

``benchmarks/train_networks.py`` trains them and writes two files per network into
``resnet_edu/trained_networks/``: ``<name>.pt``, the final weights in half precision, and
``<name>.json``, the record: every epoch's training and held-out error, the test accuracy measured
once at the end (the half-precision weights evaluated in fp32), and where, when and how the network
was trained (``record(name)["provenance"]``). ``tests/test_trained.py`` reproduces each stored test
accuracy from the stored weights.
"""

import json
from pathlib import Path

import torch

from .resnet import build

NETWORKS = ("plain20", "plain56", "resnet20", "resnet56")
FOLDER = Path(__file__).resolve().parent / "trained_networks"


def _check(name):
    if name not in NETWORKS:
        raise ValueError(f"no stored network named {name!r}; the stored ones are {', '.join(NETWORKS)}")
    if not (FOLDER / f"{name}.json").exists():
        raise FileNotFoundError(f"{name} has not been trained and stored yet: run "
                                f"`python benchmarks/train_networks.py --only {name}` from the repository")


def record(name):
    """The stored record of network ``name``: ``history``, ``test``, ``provenance`` (a dict)."""
    _check(name)
    return json.loads((FOLDER / f"{name}.json").read_text())


def load(name, device="cpu"):
    """Network ``name`` with its stored weights, in float32 and eval mode, on ``device``."""
    _check(name)
    model = build(name)
    state = torch.load(FOLDER / f"{name}.pt", map_location="cpu", weights_only=True)
    model.load_state_dict({key: value.float() if value.is_floating_point() else value for key, value in state.items()})
    return model.to(device).eval()


def available():
    """The networks whose files are stored, in the order of :data:`NETWORKS`."""
    return [name for name in NETWORKS if (FOLDER / f"{name}.json").exists()]
