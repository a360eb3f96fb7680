"""Checking a learner's predictions ("predict, then check"): each answer is compared with what the
code measures, within a stated tolerance, and the measured value is shown only once the answer is right.

A notebook asks its questions with a dict of answers that starts empty::

    my_predictions = {"parameters_100_classes": None, "layer4_shape_600x400": None}
    check_resnet18_predictions(my_predictions)

and the notebook's checker module describes each question as a :class:`Question`. A wrong answer
gets a nudge (too high, too low, or the hint), never the value, so a stored output gives nothing away.
"""

import math
from dataclasses import dataclass
from typing import Callable

from .engine import checking


@dataclass
class Question:
    """One prediction: where its answer goes, what it asks, how the code measures the truth."""

    key: str  # the answer's name in the learner's dict
    asks: str  # the question in words, e.g. "ResNet18's parameters with 100 classes"
    measure: Callable  # computes the true answer (called only when the check runs)
    tolerance: float = 0.0  # for numbers: the relative error accepted (0.01 = within 1%)
    hint: str = ""  # a nudge shown with a wrong answer; never the answer itself


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def verdict(given, truth, tolerance=0.0):
    """"right", or in words how ``given`` differs from ``truth`` (without saying what truth is)."""
    if _is_number(truth) and _is_number(given):
        if math.isclose(given, truth, rel_tol=tolerance, abs_tol=1e-9):
            return "right"
        return "too high" if given > truth else "too low"
    if isinstance(truth, str) and isinstance(given, str):
        return "right" if given.strip().lower() == truth.strip().lower() else "not it"
    if isinstance(truth, (set, frozenset)):
        return "right" if set(given) == truth else "not the right set"
    if isinstance(truth, (tuple, list)) and isinstance(given, (tuple, list)):
        return "right" if tuple(given) == tuple(truth) else "not it"
    return f"a {type(given).__name__}, but the answer is a {type(truth).__name__}"


def check_predictions(exercise, title, questions, answers):
    """Check every question's answer in the dict ``answers``; returns the CheckResult."""
    with checking(exercise, title) as result:
        if not isinstance(answers, dict):
            result.fail(f"expected a dict of answers such as {{{questions[0].key!r}: ...}}, got "
                        f"{type(answers).__name__}")
            return result
        for question in questions:
            given = answers.get(question.key)
            if given is None or given is Ellipsis:
                result.fail(f"{question.asks}: no prediction yet (fill in {question.key!r})")
                continue
            truth = question.measure()
            how = verdict(given, truth, question.tolerance)
            if how == "right":
                result.ok(f"{question.asks}: {given!r}; the code measures {truth!r}")
            else:
                result.fail(f"{question.asks}: {given!r} is {how}. {question.hint}".rstrip())
    return result
