"""Checkpoints: everything needed to continue a run exactly, written so that a crash cannot corrupt them.

A checkpoint holds tensors and plain Python values only (the random states are converted), so it
loads with ``torch.load(weights_only=True)``, which refuses to run code hidden in a file.
"""

import random
from pathlib import Path

import numpy as np
import torch

from .files import atomic_write


def rng_state():
    """Every random state, as tensors and plain numbers, so ``torch.load(weights_only=True)`` reads it."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, python_state, python_gauss = random.getstate()
    state = {"torch": torch.get_rng_state(), "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos,
                                                       has_gauss, gauss],
             "python": [version, list(python_state), python_gauss]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    """Restore what :func:`rng_state` saved (the CUDA states only where a GPU is present)."""
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, python_state, python_gauss = state["python"]
    random.setstate((version, tuple(python_state), python_gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path, **state):
    """Write ``state`` with ``torch.save`` through :func:`resnet_edu.files.atomic_write`: a crash
    mid-write never leaves a half checkpoint."""
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path):
    """Read a checkpoint written by :func:`save_checkpoint` (tensors and plain values only).

    Everything loads onto the CPU: ``load_state_dict`` then copies weights and optimiser state to
    wherever the model lives, and the random states must stay CPU byte tensors, which is all that
    ``torch.set_rng_state`` accepts (mapped to a GPU, resuming would fail).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}, so there is nothing to resume from there: check the "
                                f"path, or start without resuming (a run with out_dir set writes "
                                f"out_dir/checkpoint.pt after its first epoch)")
    return torch.load(path, map_location="cpu", weights_only=True)
