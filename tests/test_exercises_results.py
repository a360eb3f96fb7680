"""What every checker shares: a result is a value (checks with a status, a stable mistake id and words)
that prints once; every id a checker module can report is listed, with one line, in its MISTAKE_IDS;
a prediction's tolerance is relative to the measurement, unrounded."""

import ast
import inspect
import re

import pytest

import resnet_edu.exercises as exercises
from resnet_edu.exercises import engine, mistake_catalogue, predictions
from resnet_edu.exercises.engine import CheckResult, checking
from resnet_edu.exercises.predictions import Question, check_predictions, verdict

KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)+$")
NOT_IDS = {"utf-8"}  # kebab-case strings that name something else


# ---------------------------------------------------------------- the mistake ids


def _kebab_constants(module):
    """Every kebab-case string literal in a module's source: the mistake ids it can report."""
    tree = ast.parse(inspect.getsource(module))
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and KEBAB.match(node.value)} - NOT_IDS


@pytest.mark.parametrize("module", exercises.CHECKER_MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_every_id_a_checker_module_can_report_is_in_its_list(module):
    assert _kebab_constants(module) <= set(module.MISTAKE_IDS)


def test_every_id_the_engine_and_the_predictions_can_report_is_listed():
    assert _kebab_constants(engine) <= set(engine.REFERENCE_MISTAKES)
    assert _kebab_constants(predictions) <= set(predictions.PREDICTION_MISTAKES)


def test_the_catalogue_lists_each_module_with_short_kebab_ids_and_one_line_each():
    catalogue = mistake_catalogue()
    assert list(catalogue) == ["residual_block", "identity_and_conv_blocks", "four_stages", "bottleneck",
                               "training", "why_residuals_work", "what_resnet_sees"]
    for ids in catalogue.values():
        for mistake, description in ids.items():
            assert KEBAB.match(mistake) and len(mistake) <= 32, mistake
            assert description and "\n" not in description and len(description) < 120, mistake
    # the ids the issue names, where a teacher's guide will look for them
    assert {"bias-before-bn", "missing-projection", "relu-before-addition"} <= set(catalogue["residual_block"])
    assert "stride-on-first-1x1" in catalogue["bottleneck"]


# ---------------------------------------------------------------- the result


def test_a_result_is_a_value_that_prints_once(capsys):
    with checking("demo", "Checking a demo", {"demo-mistake": "a mistake for the test"}) as result:
        result.note("a case")
        result.ok("a fact that holds")
        result.fail("demo-mistake", "a fact that does not")
        assert capsys.readouterr().out == ""  # nothing is printed while the check runs
    out = capsys.readouterr().out
    assert out == result.report() + "\n"
    assert result.mistakes == ["demo-mistake"] and not result
    assert [check.status for check in result.checks] == ["ok", "FAIL"]


def test_a_result_passes_only_when_a_check_ran_and_none_failed():
    empty, passed = CheckResult("demo"), CheckResult("demo")
    passed.ok("fine")
    assert not empty and passed and passed.mistakes == []


def test_every_checker_reports_none_without_raising_and_names_a_listed_mistake(capsys):
    for name in exercises.__all__:
        if name.startswith("check_") and name != "check_deletion_predictions":
            result = getattr(exercises, name)(None)
            assert not result and result.mistakes and set(result.mistakes) <= set(result.known), name


# ---------------------------------------------------------------- the tolerance of a prediction


@pytest.mark.parametrize("given,expected", [
    (0.126, "right"), (0.0890, "right"), (0.1630, "right"),  # within 30% of 0.126: 0.0882 to 0.1638
    (0.0880, "too-low"), (0.1640, "too-high"),  # just outside, on both sides
    (0.169, "too-high"),  # math.isclose(rel_tol=0.3) let it pass: relative to the larger number
    (0.09, "right"),  # rounding the measurement to 0.13 first rejected it
])
def test_a_30_percent_tolerance_is_30_percent_of_the_truth(given, expected):
    assert verdict(given, 0.126, 0.3) == expected


@pytest.mark.parametrize("truth", [100.0, -100.0])
def test_the_edges_of_the_tolerance_are_relative_to_the_truth(truth):
    assert verdict(truth * 1.0999, truth, 0.1) == "right" == verdict(truth * 0.9001, truth, 0.1)
    assert verdict(truth * 1.1001, truth, 0.1) != "right" != verdict(truth * 0.8999, truth, 0.1)


def test_exact_questions_and_other_kinds_of_answers():
    assert verdict(3, 3) == "right" and verdict(4, 3) == "too-high" and verdict(2, 3) == "too-low"
    assert verdict("Larger ", "larger") == "right" and verdict("smaller", "larger") == "wrong-answer"
    assert verdict(["a", "b"], {"b", "a"}) == "right" and verdict({"a"}, {"a", "b"}) == "wrong-answer"
    assert verdict(1.5, "larger") == "wrong-kind-of-answer" and verdict(3, {"a"}) == "wrong-kind-of-answer"


def test_the_measurement_is_compared_unrounded(capsys):
    question = Question("share", "a share", lambda: 0.126, tolerance=0.3)
    assert check_predictions("demo", "demo", [question], {"share": 0.09})
    assert check_predictions("demo", "demo", [question], {"share": 0.169}).mistakes == ["too-high"]
