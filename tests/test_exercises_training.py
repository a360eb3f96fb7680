"""Notebook 05's exercise checkers: the solutions pass, each typical mistake gets its own words."""

import subprocess
import sys

import torch

from _checker_results import assert_passes

from resnet_edu.exercises import check_decay_groups, check_per_class_accuracy, check_random_flip
from resnet_edu.exercises.engine import solution_source
from resnet_edu.exercises.solutions.decay_groups import split_decay_groups
from resnet_edu.exercises.solutions.per_class_accuracy import my_per_class_accuracy
from resnet_edu.exercises.solutions.random_flip import my_random_flip


def test_decay_groups_solution_passes(capsys):
    out = assert_passes(check_decay_groups(split_decay_groups), capsys)
    assert "conv/linear weights decay" in out


def test_per_class_accuracy_solution_passes(capsys):
    out = assert_passes(check_per_class_accuracy(my_per_class_accuracy), capsys)
    assert "accuracies [0.8, 0.6, 0.733]" in out


def test_random_flip_solution_passes(capsys):
    out = assert_passes(check_random_flip(my_random_flip), capsys)
    assert "images 0 and 2 are mirrored left-right" in out


def test_decay_mistakes_are_named(capsys):
    assert not check_decay_groups(lambda model: (list(model.parameters()), []))
    assert "BatchNorm scale/shift or bias" in capsys.readouterr().out
    assert not check_decay_groups(lambda model: ([p for p in model.parameters() if p.ndim == 4], []))
    assert "in neither group" in capsys.readouterr().out
    assert not check_decay_groups(lambda model: (list(model.parameters()), list(model.parameters())))
    assert "are in both groups" in capsys.readouterr().out
    assert not check_decay_groups(lambda model: ([], list(model.parameters())))
    assert "miss weight decay" in capsys.readouterr().out


def test_per_class_mistakes_are_named(capsys):
    assert not check_per_class_accuracy(lambda m: m.diagonal())
    out = capsys.readouterr().out
    assert "counts of correctly classified images, not the fraction" in out and "divide" not in out  # a nudge only
    assert not check_per_class_accuracy(lambda m: m.diagonal() / m.sum(0))
    assert "column sums" in capsys.readouterr().out
    assert not check_per_class_accuracy(lambda m: 1 / 0)
    assert "ZeroDivisionError" in capsys.readouterr().out


def test_flip_mistakes_are_named(capsys):
    assert not check_random_flip(lambda images, flip: images)
    assert "nothing was flipped" in capsys.readouterr().out
    assert not check_random_flip(lambda images, flip: torch.where(flip.view(-1, 1, 1, 1), images.flip(2), images))
    assert "upside down" in capsys.readouterr().out
    assert not check_random_flip(lambda images, flip: images.flip(3))
    assert "every image was flipped" in capsys.readouterr().out


def test_a_fresh_notebook_shows_a_solution_and_runs_none():
    # what a notebook's first cells do: nothing but the file is printed, no worked answer runs on import
    code = "from resnet_edu.exercises import show_solution; show_solution('decay_groups')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out == solution_source("decay_groups")
    assert "def split_decay_groups(model):" in out
