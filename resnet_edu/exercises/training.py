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
from .engine import checking, explain_exception


def _call(result, function, *args):
    """Run the learner's function; on an exception, say so in plain words and return None."""
    try:
        return function(*args)
    except Exception as error:  # the learner's code may fail in any way; report, never raise
        result.fail(f"calling it raised {explain_exception(error)}")
        return None


# ---------------------------------------------------------------------------------------- weight decay

def _decay_group_problems(model, decay, no_decay):
    """What is wrong with the two groups (sets of parameter ids), each as a FAIL line."""
    names = {id(p): name for name, p in model.named_parameters()}
    expected = {id(p) for p in make_optimizer(model, TrainConfig()).param_groups[0]["params"]}  # the trainer's
    overlap = sorted(names[i] for i in decay & no_decay if i in names)
    missing = sorted(name for i, name in names.items() if i not in decay | no_decay)
    decayed_bn = sorted(names[i] for i in decay - expected if i in names)
    undecayed = sorted(names[i] for i in expected - decay if i in names)
    problems = [
        (overlap, "parameter(s) are in both groups, e.g. {}: each belongs in one"),
        (missing, "parameter(s) are in neither group, e.g. {}: the optimiser would never update them"),
        (decayed_bn, "BatchNorm scale/shift or bias tensor(s) get weight decay, e.g. {}: decay pulls them "
                     "towards 0, which fights the normalisation"),
        (undecayed, "convolution or linear weight(s) miss weight decay, e.g. {}: these are the weights "
                    "decay should keep small"),
    ]
    return [f"{len(found)} " + text.format(found[0]) for found, text in problems if found]


def check_decay_groups(split_decay_groups):
    """``split_decay_groups(model) -> (decay, no_decay)``: lists of parameters, as make_optimizer does."""
    with checking("decay_groups", "Checking split_decay_groups on ResNet18:") as result:
        model = resnet18(num_classes=10, stem="cifar")
        groups = _call(result, split_decay_groups, model)
        if groups is None:
            return result
        if not (isinstance(groups, (tuple, list)) and len(groups) == 2):
            result.fail(f"expected two lists (decay, no_decay); got {type(groups).__name__}")
            return result
        decay, no_decay = ({id(p) for p in group} for group in groups)
        for problem in _decay_group_problems(model, decay, no_decay):
            result.fail(problem)
        if not result.failures:
            result.ok(f"{len(decay)} conv/linear weights decay; {len(no_decay)} BatchNorm and bias tensors do not")
    return result


# ---------------------------------------------------------------------------------------- per-class accuracy

def check_per_class_accuracy(candidate):
    """``candidate(matrix) -> (classes,)`` fractions: the diagonal over each true class's row sum."""
    with checking("per_class_accuracy", "Checking per_class_accuracy on a 3-class confusion matrix:") as result:
        matrix = torch.tensor([[8, 1, 1], [2, 6, 2], [5, 3, 22]])  # rows: true class, columns: predicted
        expected = per_class_accuracy(matrix)
        answer = _call(result, candidate, matrix)
        if answer is None:
            return result
        answer = torch.as_tensor(answer, dtype=torch.float64).flatten()
        if answer.shape != expected.shape:
            result.fail(f"expected one number per class, shape {tuple(expected.shape)}; got {tuple(answer.shape)}")
        elif torch.allclose(answer, expected):
            result.ok(f"accuracies {[round(v, 3) for v in expected.tolist()]}: the diagonal over the row sums")
        elif torch.allclose(answer, matrix.diagonal().double()):
            result.fail("these are counts of correctly classified images, not the fraction of each class")
        elif torch.allclose(answer, matrix.diagonal().double() / matrix.sum(0).double()):
            result.fail("divided by the column sums (how often a class was predicted: its precision); "
                        "per-class accuracy divides by the row sums (how many images truly are that class)")
        else:
            result.fail(f"expected {[round(v, 3) for v in expected.tolist()]}; got "
                        f"{[round(v, 3) for v in answer.tolist()]}")
    return result



# ---------------------------------------------------------------------------------------- random flip

def check_random_flip(candidate):
    """``candidate(images, flip) -> images``: mirror left-right exactly the images where flip is True."""
    with checking("random_flip", "Checking random_flip on a batch of 4 images:") as result:
        images = torch.arange(4 * 3 * 4 * 5, dtype=torch.uint8).view(4, 3, 4, 5)
        flip = torch.tensor([True, False, True, False])
        expected = random_flip(images, flip)
        answer = _call(result, candidate, images.clone(), flip)
        if answer is None:
            return result
        if not isinstance(answer, torch.Tensor) or answer.shape != images.shape:
            shape = tuple(answer.shape) if isinstance(answer, torch.Tensor) else type(answer).__name__
            result.fail(f"expected a tensor of shape {tuple(images.shape)}; got {shape}")
        elif torch.equal(answer, expected):
            result.ok("images 0 and 2 are mirrored left-right, images 1 and 3 untouched")
        elif torch.equal(answer, images):
            result.fail("nothing was flipped: mirror the images whose flip entry is True")
        elif torch.equal(answer, torch.where(flip.view(-1, 1, 1, 1), images.flip(2), images)):
            result.fail("flipped upside down (dimension 2 is the height); a horizontal flip reverses "
                        "dimension 3, the width")
        elif torch.equal(answer, images.flip(3)):
            result.fail("every image was flipped; flip only those where flip is True")
        elif torch.equal(answer, torch.where(flip.view(-1, 1, 1, 1), images, images.flip(3))):
            result.fail("flipped exactly the wrong images: flip where flip is True")
        else:
            result.fail("the result matches no flip of the batch; compare yours with images.flip(3)")
    return result

