"""Notebook 05's exercise checkers: the solutions pass, each typical mistake gets its own words."""

import subprocess
import sys

import torch

from _checker_results import assert_passes, mistakes

from resnet_edu.exercises import check_decay_groups, check_per_class_accuracy, check_random_flip
from resnet_edu.exercises.engine import solution_source
from resnet_edu.exercises.solutions.decay_groups import split_decay_groups
from resnet_edu.exercises.solutions.per_class_accuracy import my_per_class_accuracy
from resnet_edu.exercises.solutions.random_flip import my_random_flip


def test_decay_groups_solution_passes(capsys):
    assert_passes(check_decay_groups(split_decay_groups))


def test_per_class_accuracy_solution_passes(capsys):
    assert_passes(check_per_class_accuracy(my_per_class_accuracy))


def test_random_flip_solution_passes(capsys):
    assert_passes(check_random_flip(my_random_flip))


def test_decay_mistakes_are_named():
    assert mistakes(check_decay_groups(lambda model: (list(model.parameters()), []))) == ["decay-on-bn-or-bias"]
    only_convs = check_decay_groups(lambda model: ([p for p in model.parameters() if p.ndim == 4], []))
    assert mistakes(only_convs) == ["parameter-in-no-group", "no-decay-on-weights"]  # fc.weight too
    both = check_decay_groups(lambda model: (list(model.parameters()), list(model.parameters())))
    assert mistakes(both)[0] == "parameter-in-both-groups"
    assert mistakes(check_decay_groups(lambda model: ([], list(model.parameters())))) == ["no-decay-on-weights"]
    assert mistakes(check_decay_groups(lambda model: None)) == ["not-two-groups"]


def test_per_class_mistakes_are_named(capsys):
    assert mistakes(check_per_class_accuracy(lambda m: m.diagonal())) == ["counts-not-fractions"]
    assert "divide" not in capsys.readouterr().out  # a nudge only
    assert mistakes(check_per_class_accuracy(lambda m: m.diagonal() / m.sum(0))) == ["divided-by-column-sums"]
    assert mistakes(check_per_class_accuracy(lambda m: m.diagonal() / m.sum())) == ["divided-by-the-total"]
    assert mistakes(check_per_class_accuracy(lambda m: m.diagonal() // m.sum(1))) == ["integer-division"]


def test_random_flip_that_changes_its_input_or_its_dtype_is_named(capsys):
    def in_place(images, flip):
        images[flip] = images[flip].flip(3)
        return images

    assert mistakes(check_random_flip(in_place)) == ["changes-its-input"]
    assert mistakes(check_random_flip(lambda images, flip: my_random_flip(images, flip).float())) == ["wrong-dtype"]


def test_random_flip_that_ignores_the_flip_pattern_is_named(capsys):
    def by_position(images, flip):
        out = images.clone()
        out[::2] = out[::2].flip(3)
        return out

    assert mistakes(check_random_flip(by_position)) == ["ignores-flip"]
    assert mistakes(check_per_class_accuracy(lambda m: 1 / 0)) == ["function-raises"]
    assert mistakes(check_per_class_accuracy(lambda m: m[0])) == ["outputs-differ"]


def test_flip_mistakes_are_named():
    assert mistakes(check_random_flip(lambda images, flip: images)) == ["nothing-flipped"]
    upside_down = check_random_flip(lambda images, flip: torch.where(flip.view(-1, 1, 1, 1), images.flip(2), images))
    assert mistakes(upside_down) == ["flipped-upside-down"]
    assert mistakes(check_random_flip(lambda images, flip: images.flip(3))) == ["flipped-every-image"]
    wrong_ones = check_random_flip(lambda images, flip: torch.where(flip.view(-1, 1, 1, 1), images, images.flip(3)))
    assert mistakes(wrong_ones) == ["flipped-the-wrong-images"]
    assert mistakes(check_random_flip(lambda images, flip: images[:2])) == ["wrong-output-shape"]


def test_a_fresh_notebook_shows_a_solution_and_runs_none():
    # what a notebook's first cells do: nothing but the file is printed, no worked answer runs on import
    code = "from resnet_edu.exercises import show_solution; show_solution('decay_groups')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out == solution_source("decay_groups")
    assert "def split_decay_groups(model):" in out
