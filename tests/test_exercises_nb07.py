"""Notebook 07's checkers: check_grad_cam passes the solution and names each typical mistake by its
output, without giving the answer away; check_map_size_predictions accepts the worked answers and
gives no value away."""

import json
import re
import runpy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from _checker_results import assert_names, assert_passes, mistakes

from resnet_edu.exercises import check_grad_cam, check_map_size_predictions
from resnet_edu.exercises.solutions.grad_cam import my_grad_cam
from resnet_edu.exercises.what_resnet_sees import (ATOL, GRAD_CAM_MISTAKES, LAYER, _classes_without_evidence,
                                                   _evidence, _model_and_images, _other_classes, layer_gradients,
                                                   mistaken_grad_cam)
from resnet_edu.inside import grad_cam, recording_outputs

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "07_what_resnet_sees.ipynb"


def learners_grad_cam(model, images, layer, classes=None, *, relu=True, average=True, softmax=False,
                      every_images_class=False, use_classes=True, first_images_class=False, return_predicted=False,
                      scale="each", scale_first=False, resize=True, mode="bilinear", align_corners=False,
                      keep_channel=False, maps_only=False, leave_hook=False, negated=False):
    """Grad-CAM the way a learner might write it (a hook, retain_grad, backward), with one step that
    can be done wrongly per keyword: independent of the checker's own mistaken_grad_cam."""
    stored = {}
    handle = model.get_submodule(layer).register_forward_hook(lambda m, i, o: stored.update(out=o))
    logits = model(images)
    if not leave_hook:
        handle.remove()
    activations = stored["out"]
    activations.retain_grad()
    if classes is None or not use_classes:
        # first_images_class: the habit of code written for one image, pred_index = argmax(preds[0])
        classes = logits[0].argmax().repeat(len(images)) if first_images_class else logits.argmax(1)
    scores = logits.softmax(1) if softmax else logits
    picked = scores[:, classes] if every_images_class else scores[torch.arange(len(images)), classes]
    (-picked.sum() if negated else picked.sum()).backward()  # negated: a loss's gradient, which points away
    gradients = activations.grad
    model.zero_grad(set_to_none=True)
    dims = (0, 2, 3) if average == "batch" else (2, 3)
    weights = gradients.mean(dim=dims, keepdim=True) if average else gradients
    maps = (weights * activations).sum(1, keepdim=True).detach()
    if relu == "abs":
        maps = maps.abs()
    elif relu is True:
        maps = maps.clamp(min=0)
    if scale_first:
        maps = maps / maps.amax(dim=(1, 2, 3), keepdim=True)
    if resize:
        extra = {} if mode == "nearest" else {"align_corners": align_corners}
        maps = F.interpolate(maps, size=images.shape[-2:], mode=mode, **extra)
    if relu == "after_resize":
        maps = maps.clamp(min=0)
    if not keep_channel:
        maps = maps[:, 0]
    if scale in ("each", "each-unguarded") and not scale_first:
        peaks = maps.flatten(1).max(1).values.view(-1, *[1] * (maps.dim() - 1))
        maps = maps / (peaks if scale == "each-unguarded" else peaks.where(peaks > 0, torch.ones_like(peaks)))
    elif scale == "batch":
        maps = maps / maps.max()
    elif scale == "min-max":  # as pytorch-grad-cam scales its maps
        lows = maps.amin(dim=(-2, -1), keepdim=True)
        maps = (maps - lows) / (maps.amax(dim=(-2, -1), keepdim=True) - lows + 1e-7)
    return maps if maps_only else (maps, logits.argmax(1) if return_predicted else classes)


def with_mistake(**mistake):
    def candidate(model, images, layer, classes=None):
        return learners_grad_cam(model, images, layer, classes, **mistake)
    return candidate


# ---------------------------------------------------------------- check_grad_cam


def test_a_score_with_the_wrong_sign_is_not_told_that_its_scaling_is_wrong(capsys):
    assert set(mistakes(check_grad_cam(with_mistake(negated=True)))) == {"maps-differ"}
    assert "peaks at 1" not in capsys.readouterr().out  # its empty maps (peak 0) are no scaling clue


def test_the_solution_and_a_learners_version_pass(capsys):
    assert_passes(check_grad_cam(my_grad_cam))
    assert_passes(check_grad_cam(with_mistake()), capsys)  # retain_grad and backward: the same maps


def test_a_map_without_evidence_must_stay_zero_not_be_divided_by_its_zero_peak(capsys):
    result = check_grad_cam(with_mistake(scale="each-unguarded"))
    assert mistakes(result) == ["maps-not-finite"]
    assert "no evidence" in capsys.readouterr().out


def test_the_images_have_different_predictions_each_with_evidence_and_a_clear_margin():
    # a random network predicts one class for every random image: then "the first image's class for
    # all" could not be told from "each image's own class"
    model, images = _model_and_images()
    with torch.no_grad():
        logits = model(images)
    predicted = logits.argmax(1)
    assert len(set(predicted.tolist())) >= 3
    assert predicted[1:].ne(predicted[0]).sum() >= 2  # the first image's class is wrong for at least two others
    top_two = logits.topk(2, dim=1).values
    assert (top_two[:, 0] - top_two[:, 1]).min() > 1e-3  # far above float rounding: every way of computing agrees
    evidence = _evidence(model, images)
    assert evidence[torch.arange(len(images)), predicted].all()
    assert _classes_without_evidence(evidence) is not None
    model_again, images_again = _model_and_images()
    assert torch.equal(images, images_again) and torch.equal(model_again.fc.bias, model.fc.bias)


def test_the_mistakes_the_checker_knows_are_grad_cam_with_one_step_changed():
    model, images = _model_and_images()
    with torch.no_grad():
        others = _other_classes(model(images), _evidence(model, images))
    assert len(set(others.tolist())) == len(others)  # distinct, so that logits[:, classes] shows
    for classes in (model(images).argmax(1), others):
        expected = grad_cam(model, images, LAYER, classes)[0]
        computed = mistaken_grad_cam(*layer_gradients(model, images, LAYER, classes), images.shape[-2:])
        assert torch.allclose(computed, expected, atol=1e-6)
        assert torch.allclose(expected.flatten(1).max(1).values, torch.ones(len(images)))  # every map has evidence
    for mistake in GRAD_CAM_MISTAKES:  # each is told apart from the right answer where the check looks for it
        kwargs = dict(mistake.output)
        found = layer_gradients(model, images, LAYER, others, kwargs.pop("score", "logit"))
        difference = (mistaken_grad_cam(*found, images.shape[-2:], **kwargs) - expected).abs().max()
        assert difference > 100 * ATOL, mistake.id


@pytest.mark.parametrize("mistake,named", [
    (dict(relu=False), "no-relu"),
    (dict(relu="abs"), "abs-instead-of-relu"),
    (dict(relu="after_resize"), "relu-after-resize"),
    (dict(average=False), "pixelwise-weights"),
    (dict(average="batch"), "weights-averaged-over-batch"),
    (dict(softmax=True), "gradient-of-probability"),
    (dict(every_images_class=True), "scores-of-all-images"),
    (dict(scale=None), "maps-not-scaled"),
    (dict(scale="batch"), "scaled-over-batch"),
    (dict(scale="min-max"), "min-max-scaled"),
    (dict(relu=False, scale="min-max"), "min-max-scaled"),  # as much Grad-CAM code on the web does
    (dict(scale_first=True), "scaled-before-resize"),
    (dict(mode="nearest"), "nearest-resize"),
    (dict(align_corners=True), "align-corners-resize"),
    (dict(resize=False), "wrong-map-shape"),
    (dict(keep_channel=True), "wrong-map-shape"),
    (dict(use_classes=False), "predicted-class-used"),
    (dict(use_classes=False, relu=False), "predicted-class-used"),  # told by the classes returned
    (dict(first_images_class=True), "first-image-class-for-all"),
    (dict(first_images_class=True, relu=False), "first-image-class-for-all"),
    (dict(return_predicted=True), "wrong-classes-returned"),
    (dict(maps_only=True), "not-maps-and-classes"),
    (dict(leave_hook=True), "hook-left-attached"),
])
def test_each_mistake_is_named(mistake, named):
    assert_names(check_grad_cam(with_mistake(**mistake)), named)


@pytest.mark.parametrize("context", [torch.no_grad, torch.inference_mode])
@pytest.mark.parametrize("gradient_by", ["autograd.grad", "retain_grad", "tensor hook"])
def test_a_forward_pass_without_gradients_is_explained(context, gradient_by, capsys):
    def without_gradients(model, images, layer, classes=None):
        with context():
            if gradient_by == "autograd.grad":
                return my_grad_cam(model, images, layer, classes)
            if gradient_by == "retain_grad":
                return learners_grad_cam(model, images, layer, classes)
            with recording_outputs(model, [layer]) as outputs:
                model(images)
            outputs[layer].register_hook(print)
            return None

    result = check_grad_cam(without_gradients)
    out = " ".join(capsys.readouterr().out.split())  # the report's lines are wrapped
    assert mistakes(result) == ["function-raises", "function-raises"]
    assert "In plain words" in out and "torch.no_grad()" in out and "graph" in out


def test_the_keras_habit_first_images_class_for_all_fails_only_where_classes_is_none():
    def keras_habit(model, images, layer, classes=None):
        if classes is None:
            with torch.no_grad():
                classes = model(images)[0].argmax().repeat(len(images))  # pred_index = argmax(preds[0])
        return my_grad_cam(model, images, layer, classes)

    result = check_grad_cam(keras_habit)
    assert [check.status for check in result.checks] == ["FAIL", "ok"]
    assert mistakes(result) == ["first-image-class-for-all"]


def test_a_single_class_for_all_returned_as_one_number_is_named():
    def one_number(model, images, layer, classes=None):
        with recording_outputs(model, [layer]) as outputs:
            logits = model(images)
        if classes is None:
            classes = logits[0].argmax()  # a 0-d tensor: logits[:, classes] then picks it for every image
        scores = logits[:, classes] if classes.dim() == 0 else logits[torch.arange(len(images)), classes]
        (gradients,) = torch.autograd.grad(scores.sum(), outputs[layer])
        maps = F.relu((gradients.mean(dim=(2, 3), keepdim=True) * outputs[layer]).sum(1, keepdim=True))
        maps = F.interpolate(maps, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        return (maps / maps.flatten(1).max(1).values.clamp_min(1e-12)[:, None, None]).detach(), classes

    assert mistakes(check_grad_cam(one_number)) == ["first-image-class-for-all"]


def test_right_maps_with_the_predicted_classes_returned_are_not_called_maps_of_the_predicted_class(capsys):
    def returns_the_prediction(model, images, layer, classes=None):
        maps, _ = my_grad_cam(model, images, layer, classes)
        with torch.no_grad():
            return maps, model(images).argmax(1)

    result = check_grad_cam(returns_the_prediction)
    out = " ".join(capsys.readouterr().out.split())
    assert [check.status for check in result.checks] == ["ok", "FAIL"]
    assert mistakes(result) == ["wrong-classes-returned"]
    assert "maps of each image's predicted class" not in out and "the maps are right" in out


def test_the_tuple_autograd_grad_returns_is_explained():
    def gradients_not_unpacked(model, images, layer, classes=None):
        with recording_outputs(model, [layer]) as outputs:
            logits = model(images)
        gradients = torch.autograd.grad(logits.max(1).values.sum(), outputs[layer])
        return gradients.mean(dim=(2, 3)), classes

    assert_names(check_grad_cam(gradients_not_unpacked), "function-raises")


def test_a_learners_model_train_changes_nothing_the_check_uses():
    seen = []

    def in_training_mode(model, images, layer, classes=None):
        seen.append((model.training, model.bn1.running_mean.clone()))
        model.train()  # BatchNorm now updates its running statistics on every forward pass
        return learners_grad_cam(model, images, layer, classes)

    result = check_grad_cam(in_training_mode)
    assert_names(result, "maps-differ")
    (first_mode, first_statistics), (second_mode, second_statistics) = seen
    assert not first_mode and not second_mode and torch.equal(first_statistics, second_statistics)


def test_only_the_case_with_the_mistake_fails():
    # ignoring classes is right when classes is None: the first case passes, the second names it
    result = check_grad_cam(with_mistake(use_classes=False))
    assert [check.status for check in result.checks] == ["ok", "FAIL"]
    assert mistakes(result) == ["predicted-class-used"]


def test_an_unknown_mistake_gets_the_steps_and_clues_but_no_code(capsys):
    def doubled_and_negative(model, images, layer, classes=None):
        maps, classes = my_grad_cam(model, images, layer, classes)
        return 2 * maps - 0.5, classes

    result = check_grad_cam(doubled_and_negative)
    out = capsys.readouterr().out
    assert_names(result, "maps-differ")
    for code in ("autograd.grad", "mean(dim=(2, 3)", "F.interpolate(", "clamp_min", "[torch.arange"):
        assert code not in out


@pytest.mark.parametrize("candidate,named", [
    (None, "not-callable"),
    (lambda model, images, layer, classes=None: 1 / 0, "function-raises"),
    (lambda model, images, layer, classes=None: ("maps", classes), "maps-not-a-tensor"),
    (lambda model, images, layer, classes=None: (torch.zeros(4, 48, 64), classes), "wrong-map-shape"),
    (lambda model, images, layer, classes=None: (torch.zeros(4, 64, 48), "cat"), "wrong-classes-returned"),
])
def test_anything_else_is_reported_never_raised(candidate, named):
    assert_names(check_grad_cam(candidate), named)


def test_the_notebooks_starter_fails_with_a_nudge(capsys):
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    starter = next("".join(c["source"]) for c in cells if c["cell_type"] == "code"
                   and "def my_grad_cam" in "".join(c["source"]))
    exec(starter, {})
    out = capsys.readouterr().out
    assert "FAIL" in out and 'show_solution("grad_cam")' in out
    assert "autograd.grad(" not in out


# ---------------------------------------------------------------- check_map_size_predictions

EMPTY = {"smallest_side_imagenet_stem": None, "smallest_side_cifar_stem": None}
RIGHT = {"smallest_side_imagenet_stem": 97, "smallest_side_cifar_stem": 25}


def test_empty_predictions_fail_and_give_nothing_away(capsys):
    result = check_map_size_predictions(dict(EMPTY))
    out = capsys.readouterr().out
    assert mistakes(result) == ["no-prediction", "no-prediction"] and not result
    assert not re.search(r"\b(97|25)\b", out)
    assert 'show_solution("map_size_predictions")' in out


def test_right_predictions_pass_and_wrong_ones_get_a_nudge(capsys):
    assert_passes(check_map_size_predictions(dict(RIGHT)), capsys)
    result = check_map_size_predictions({"smallest_side_imagenet_stem": 128, "smallest_side_cifar_stem": 24})
    out = capsys.readouterr().out
    assert mistakes(result) == ["too-high", "too-low"]
    assert not re.search(r"\b(97|25)\b", out)


def test_the_worked_answer_predicts_the_measurements_and_passes(capsys):
    runpy.run_module("resnet_edu.exercises.solutions.map_size_predictions")
    out = capsys.readouterr().out
    assert "1. 97 predicted, 97 measured, layer4 side there: 4" in out
    assert "2. 25 predicted, 25 measured" in out
    assert "FAIL" not in out
