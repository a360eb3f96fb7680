"""Checking a learner's predictions ("predict, then check"): each answer is compared with what the
code measures, within a stated tolerance, and the measured value is shown only once the answer is right.

A notebook asks its questions with a dict of answers that starts empty::

    my_predictions = {"parameters_100_classes": None, "layer4_shape_600x400": None}
    check_resnet18_predictions(my_predictions)

and the notebook's checker module describes each question as a :class:`Question`. A wrong answer
gets a nudge (too high, too low, or the hint), never the value, so a stored output gives nothing away.
"""

import numbers
from dataclasses import dataclass
from typing import Callable

from .engine import checking

PREDICTION_MISTAKES = {
    "answers-not-a-dict": "the answers were not given as a dict",
    "no-prediction": "a question has no answer yet",
    "too-high": "a number more than the tolerance above the measurement",
    "too-low": "a number more than the tolerance below the measurement",
    "wrong-answer": "a word, a set or a tuple that is not the measured one",
    "wrong-kind-of-answer": "an answer of another type than the measurement (a number for a word)",
}


@dataclass
class Question:
    """One prediction: where its answer goes, what it asks, how the code measures the truth."""

    key: str  # the answer's name in the learner's dict
    asks: str  # the question in words, e.g. "ResNet18's parameters with 100 classes"
    measure: Callable  # computes the true answer (called only when the check runs)
    tolerance: float = 0.0  # for numbers: the relative error accepted (0.01 = within 1%)
    within: float = 0.0  # for numbers near zero: the absolute error accepted (0.1: within 0.1 either side)
    hint: str = ""  # a nudge shown with a wrong answer; never the answer itself


def _plain(value):
    """A NumPy number or a one-element tensor as the Python number it holds; anything else as it is."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    return value


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def verdict(given, truth, tolerance=0.0, within=0.0):
    """The mistake id of ``given`` as an answer to ``truth``, or "right".

    A number is right within ``tolerance`` of the truth, relative to the truth:
    ``abs(given - truth) <= tolerance * abs(truth)`` (0.3: from 70% to 130% of it), or within the
    absolute margin ``within`` (for a truth near zero, where a relative margin shrinks to nothing),
    compared with the measurement as measured, never rounded. Never says what ``truth`` is.
    """
    given = _plain(given)
    if _is_number(truth) and _is_number(given):
        margin = max(tolerance * abs(truth), within)
        if abs(given - truth) <= margin + 1e-9:  # 1e-9: float noise of an exact answer
            return "right"
        return "too-high" if given > truth else "too-low"
    if isinstance(truth, str) and isinstance(given, str):
        return "right" if given.strip().lower() == truth.strip().lower() else "wrong-answer"
    if isinstance(truth, (set, frozenset)) and isinstance(given, (set, frozenset, list, tuple)):
        return "right" if set(given) == truth else "wrong-answer"
    if isinstance(truth, (tuple, list)) and isinstance(given, (tuple, list)):
        return "right" if tuple(given) == tuple(truth) else "wrong-answer"
    return "wrong-kind-of-answer"


def _a(noun):
    return ("an " if noun[0] in "aeiou" else "a ") + noun


IN_WORDS = {"too-high": "too high", "too-low": "too low", "wrong-answer": "not it"}


def _in_words(mistake, given, truth):
    if mistake == "wrong-kind-of-answer":
        return f"{_a(type(given).__name__)}, but the answer is {_a(type(truth).__name__)}"
    return "not the right set" if isinstance(truth, (set, frozenset)) else IN_WORDS[mistake]


def check_predictions(exercise, title, questions, answers, known=PREDICTION_MISTAKES):
    """Check every question's answer in the dict ``answers``; returns the CheckResult."""
    with checking(exercise, title, known) as result:
        if not isinstance(answers, dict):
            result.fail("answers-not-a-dict", f"expected a dict of answers such as {{{questions[0].key!r}: ...}}, "
                        f"got {type(answers).__name__}")
            return result
        for question in questions:
            _check_question(result, question, answers.get(question.key))
    return result


def _check_question(result, question, given):
    if given is None or given is Ellipsis:
        result.fail("no-prediction", f"{question.asks}: no prediction yet (fill in {question.key!r})")
        return
    truth = question.measure()
    mistake = verdict(given, truth, question.tolerance, question.within)
    if mistake == "right":
        result.ok(f"{question.asks}: {given!r}; the code measures {_shown(truth)}")
    else:
        hint = question.hint[:1].upper() + question.hint[1:]
        result.fail(mistake, f"{question.asks}: {given!r} is {_in_words(mistake, given, truth)}. {hint}".rstrip())


def _shown(truth):
    """The measurement as the report shows it: a float to four significant digits (it is compared unrounded)."""
    return f"{truth:.4g}" if isinstance(truth, float) else repr(truth)
