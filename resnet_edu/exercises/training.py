"""The checkers of notebook 05 (training): ``check_decay_groups``, ``check_per_class_accuracy`` and
``check_random_flip``.

Each runs the learner's function on a small case, compares it with the reference in ``resnet_edu``
and prints what is right and what is wrong; it never raises on a wrong answer.
"""

import torch

from ..loaders import random_flip
from ..metrics import per_class_accuracy
from ..resnet import resnet18
from ..train import TrainConfig, make_optimizer
from .engine import FAILED, Mistake, call_learner, catalogue, checking, matching_mistake, same_values

CALL_MISTAKES = {
    "function-raises": "calling the learner's function raised an exception",
    "wrong-output-shape": "the answer has another shape than the reference's",
    "outputs-differ": "the answer matches neither the reference nor a known mistake",
}
FLIP_CALL_MISTAKES = {
    "ignores-flip": "right for the first flip pattern, wrong for another",
    "changes-its-input": "the function changed the batch it was given, in place",
    "wrong-dtype": "the flipped images have another dtype than the images given",
}


def _call(result, function, *args):
    """The learner's function on ``args``, or FAILED with a FAIL line."""
    return call_learner(result, "calling it", function, *args, mistake="function-raises")


def _name_the_answer(result, answer, expected, mistakes, right, otherwise):
    """ok ``right`` when the answer equals the expected one; else the known mistake it matches, or
    ``otherwise``."""
    if same_values(answer, expected):
        result.ok(right)
        return
    mistake = matching_mistake(answer, mistakes, lambda m: m.output)
    if mistake is not None:
        result.fail(mistake.id, mistake.explanation)
    else:
        result.fail("outputs-differ", otherwise)


# ---------------------------------------------------------------------------------------- weight decay

DECAY_MISTAKES = catalogue(CALL_MISTAKES, {
    "not-two-groups": "the function did not return two lists (decay, no_decay)",
    "parameter-in-both-groups": "a parameter is in both groups",
    "parameter-in-no-group": "a parameter is in neither group",
    "decay-on-bn-or-bias": "a BatchNorm scale or shift, or a bias, gets weight decay",
    "no-decay-on-weights": "a convolution or linear weight misses weight decay",
})


def _decay_group_problems(model, decay, no_decay):
    """What is wrong with the two groups (sets of parameter ids), each as (mistake id, words)."""
    names = {id(p): name for name, p in model.named_parameters()}
    expected = {id(p) for p in make_optimizer(model, TrainConfig()).param_groups[0]["params"]}  # the trainer's
    overlap = sorted(names[i] for i in decay & no_decay if i in names)
    missing = sorted(name for i, name in names.items() if i not in decay | no_decay)
    decayed_bn = sorted(names[i] for i in decay - expected if i in names)
    undecayed = sorted(names[i] for i in expected - decay if i in names)
    problems = [
        (overlap, "parameter-in-both-groups", "parameter(s) are in both groups, e.g. {}: each belongs in one"),
        (missing, "parameter-in-no-group",
         "parameter(s) are in neither group, e.g. {}: the optimiser would never update them"),
        (decayed_bn, "decay-on-bn-or-bias", "BatchNorm scale/shift or bias tensor(s) get weight decay, e.g. {}: "
                                            "a BN scale or shift, or a bias, sets a size or an offset, and decay "
                                            "would only pull it towards 0 (Bag of Tricks, section 3.1: no bias "
                                            "decay). What do these tensors share that the convolution and "
                                            "linear weights do not? Look at their shapes"),
        (undecayed, "no-decay-on-weights", "convolution or linear weight(s) miss weight decay, e.g. {}: these are "
                                           "the weights decay should keep small"),
    ]
    return [(mistake, f"{len(found)} " + text.format(found[0])) for found, mistake, text in problems if found]


def check_decay_groups(split_decay_groups):
    """``split_decay_groups(model) -> (decay, no_decay)``: lists of parameters, as make_optimizer does."""
    with checking("decay_groups", "Checking split_decay_groups on ResNet18:", DECAY_MISTAKES) as result:
        model = resnet18(num_classes=10, stem="cifar")
        groups = _call(result, split_decay_groups, model)
        if groups is FAILED:
            return result
        if not (isinstance(groups, (tuple, list)) and len(groups) == 2):
            result.fail("not-two-groups", f"expected two lists (decay, no_decay); got {type(groups).__name__}")
            return result
        decay, no_decay = ({id(p) for p in group} for group in groups)
        for problem in _decay_group_problems(model, decay, no_decay):
            result.fail(*problem)
        if not result.failures:
            result.ok(f"{len(decay)} conv/linear weights decay; {len(no_decay)} BatchNorm and bias tensors do not")
    return result


# ---------------------------------------------------------------------------------------- per-class accuracy

ACCURACY_MATRIX = torch.tensor([[8, 1, 1], [2, 6, 2], [5, 3, 22]])  # rows: true class, columns: predicted
ACCURACY_MISTAKES = [
    Mistake("counts-not-fractions", "counts instead of fractions", ACCURACY_MATRIX.diagonal().double(),
            "these are counts of correctly classified images, not the fraction of each class"),
    Mistake("divided-by-column-sums", "divided by the column sums (precision)",
            ACCURACY_MATRIX.diagonal().double() / ACCURACY_MATRIX.sum(0).double(),
            "divided by the column sums (how often a class was predicted: its precision); per-class accuracy "
            "divides by the row sums (how many images truly are that class)"),
    Mistake("divided-by-the-total", "divided by the number of all images",
            ACCURACY_MATRIX.diagonal().double() / ACCURACY_MATRIX.sum().double(),
            "divided by the number of all images; each class's accuracy divides by how many images truly are "
            "that class (its row's sum)"),
    Mistake("integer-division", "integer division", (ACCURACY_MATRIX.diagonal() // ACCURACY_MATRIX.sum(1)).double(),
            "integer division rounds every fraction down to 0 or 1: divide with / (a float result)"),
]


def check_per_class_accuracy(candidate):
    """``candidate(matrix) -> (classes,)`` fractions: the diagonal over each true class's row sum."""
    title = "Checking per_class_accuracy on a 3-class confusion matrix:"
    with checking("per_class_accuracy", title, catalogue(CALL_MISTAKES, ACCURACY_MISTAKES)) as result:
        expected = per_class_accuracy(ACCURACY_MATRIX).double()
        answer = _call(result, candidate, ACCURACY_MATRIX.clone())
        if answer is FAILED:
            return result
        answer = torch.as_tensor(answer, dtype=torch.float64).flatten()
        shown = [round(v, 3) for v in expected.tolist()]
        if answer.shape != expected.shape:
            result.fail("wrong-output-shape", f"expected one number per class, shape {tuple(expected.shape)}; "
                        f"got {tuple(answer.shape)}")
        else:
            _name_the_answer(result, answer, expected, ACCURACY_MISTAKES,
                             f"accuracies {shown}: the diagonal over the row sums",
                             f"expected {shown}; got {[round(v, 3) for v in answer.tolist()]}")
    return result


# ---------------------------------------------------------------------------------------- random flip

FLIP_IMAGES = torch.arange(4 * 3 * 4 * 5, dtype=torch.uint8).view(4, 3, 4, 5)
FLIP = torch.tensor([True, False, True, False])
FLIP_OTHER = torch.tensor([False, True, True, False])
FLIP_MISTAKES = [
    Mistake("nothing-flipped", "nothing flipped", FLIP_IMAGES,
            "nothing was flipped: mirror the images whose flip entry is True"),
    Mistake("flipped-upside-down", "flipped upside down",
            torch.where(FLIP.view(-1, 1, 1, 1), FLIP_IMAGES.flip(2), FLIP_IMAGES),
            "flipped upside down (dimension 2 is the height); a horizontal flip reverses dimension 3, the width"),
    Mistake("flipped-every-image", "every image flipped", FLIP_IMAGES.flip(3),
            "every image was flipped; flip only those where flip is True"),
    Mistake("flipped-the-wrong-images", "the wrong images flipped",
            torch.where(FLIP.view(-1, 1, 1, 1), FLIP_IMAGES, FLIP_IMAGES.flip(3)),
            "flipped exactly the wrong images: flip where flip is True"),
]


def check_random_flip(candidate):
    """``candidate(images, flip) -> images``: mirror left-right exactly the images where flip is True."""
    title = "Checking random_flip on a batch of 4 images:"
    with checking("random_flip", title, catalogue(CALL_MISTAKES, FLIP_CALL_MISTAKES, FLIP_MISTAKES)) as result:
        images = FLIP_IMAGES.clone()
        answer = _call(result, candidate, images, FLIP.clone())
        if answer is FAILED:
            return result
        if not torch.equal(images, FLIP_IMAGES):
            result.fail("changes-its-input", "it changed the batch it was given (in place); return a new tensor "
                        "and leave the input as it was, since the loader may pass a view of the whole data set")
        if not isinstance(answer, torch.Tensor) or answer.shape != FLIP_IMAGES.shape:
            shape = tuple(answer.shape) if isinstance(answer, torch.Tensor) else type(answer).__name__
            result.fail("wrong-output-shape", f"expected a tensor of shape {tuple(FLIP_IMAGES.shape)}; got {shape}")
        elif answer.dtype != FLIP_IMAGES.dtype:
            result.fail("wrong-dtype", f"the images arrived as {FLIP_IMAGES.dtype} and left as {answer.dtype}: "
                        "a flip moves pixels and keeps their type (no conversion needed)")
        else:
            _name_the_answer(result, answer, random_flip(FLIP_IMAGES, FLIP), FLIP_MISTAKES,
                             "images 0 and 2 are mirrored left-right, images 1 and 3 untouched",
                             "the result matches no flip of the batch; compare yours with images.flip(3)")
            if not result.failures:
                _check_another_pattern(result, candidate)
    return result


def _check_another_pattern(result, candidate):
    """The same function on another flip pattern: it must read flip, not the images' positions."""
    answer = _call(result, candidate, FLIP_IMAGES.clone(), FLIP_OTHER.clone())
    if answer is FAILED:
        return
    if isinstance(answer, torch.Tensor) and same_values(answer, random_flip(FLIP_IMAGES, FLIP_OTHER)):
        result.ok(f"with flip = {FLIP_OTHER.tolist()}: images 1 and 2 mirrored, 0 and 3 untouched")
    else:
        result.fail("ignores-flip", f"right for one flip pattern, wrong for flip = {FLIP_OTHER.tolist()}: "
                    "choose the images to mirror from flip, not from their positions in the batch")


# every id this module reports
MISTAKE_IDS = catalogue(DECAY_MISTAKES, CALL_MISTAKES, ACCURACY_MISTAKES, FLIP_CALL_MISTAKES, FLIP_MISTAKES)
