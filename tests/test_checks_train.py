"""Notebook 05's exercise checkers: the solutions pass, each typical mistake gets its own words."""

import torch

from resnet_edu.check_engine import load_solution
from resnet_edu.checks_train import check_decay_groups, check_per_class_accuracy, check_random_flip


def test_solutions_pass():
    assert check_decay_groups(load_solution("decay_groups", "split_decay_groups"))
    assert check_per_class_accuracy(load_solution("per_class_accuracy", "my_per_class_accuracy"))
    assert check_random_flip(load_solution("random_flip", "my_random_flip"))


def test_decay_mistakes_are_named(capsys):
    assert not check_decay_groups(lambda model: (list(model.parameters()), []))
    assert "BatchNorm scale/shift or bias" in capsys.readouterr().out
    assert not check_decay_groups(lambda model: ([p for p in model.parameters() if p.ndim == 4], []))
    assert "in neither group" in capsys.readouterr().out


def test_per_class_mistakes_are_named(capsys):
    assert not check_per_class_accuracy(lambda m: m.diagonal())
    assert "counts of correct images" in capsys.readouterr().out
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
