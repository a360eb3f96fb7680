"""Exercise checkers of notebook 05 (training), built on the engine in :mod:`resnet_edu.check_engine`.

Each checker runs the learner's function on small cases, compares with the reference in
``resnet_edu`` and prints what is right and what is wrong; it never raises on a wrong answer.
``show_solution(name)`` prints a reference solution (the same registry as the other notebooks).
"""

import torch

from .check_engine import add_solution, checking, explain_exception, show_solution  # noqa: F401 (re-exported)
from .data import random_flip
from .resnet import resnet18
from .viz import per_class_accuracy

__all__ = ["check_decay_groups", "check_per_class_accuracy", "check_random_flip", "show_solution"]


def _call(result, function, *args):
    """Run the learner's function; on an exception, say so in plain words and return None."""
    try:
        return function(*args)
    except Exception as error:  # the learner's code may fail in any way; report, never raise
        result.fail(f"calling it raised {explain_exception(error)}")
        return None


# ---------------------------------------------------------------------------------------- weight decay

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
        names = {id(p): name for name, p in model.named_parameters()}
        overlap = sorted(names[i] for i in decay & no_decay if i in names)
        missing = sorted(name for i, name in names.items() if i not in decay | no_decay)
        if overlap:
            result.fail(f"{len(overlap)} parameter(s) are in both groups, e.g. {overlap[0]}: each belongs in one")
        if missing:
            result.fail(f"{len(missing)} parameter(s) are in neither group, e.g. {missing[0]}: the optimiser "
                        f"would never update them")
        expected = {id(p) for p in model.parameters() if p.ndim > 1}
        decayed_bn = sorted(names[i] for i in decay - expected if i in names)
        if decayed_bn:
            result.fail(f"{len(decayed_bn)} BatchNorm scale/shift or bias tensor(s) get weight decay, e.g. "
                        f"{decayed_bn[0]}: decay pulls them towards 0, which fights the normalisation")
        undecayed = sorted(names[i] for i in expected - decay if i in names)
        if undecayed:
            result.fail(f"{len(undecayed)} convolution or linear weight(s) miss weight decay, e.g. "
                        f"{undecayed[0]}: these are the weights decay should keep small")
        if not (overlap or missing or decayed_bn or undecayed):
            result.ok(f"{len(decay)} conv/linear weights decay; {len(no_decay)} BatchNorm and bias tensors do not")
    return result


add_solution("decay_groups", '''
    def split_decay_groups(model):
        decay = [p for p in model.parameters() if p.ndim > 1]      # conv kernels, the fc matrix
        no_decay = [p for p in model.parameters() if p.ndim <= 1]  # BatchNorm weight/bias, fc bias
        return decay, no_decay
''')


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
            result.fail("these are counts of correct images; divide by how many images each class has")
        elif torch.allclose(answer, matrix.diagonal().double() / matrix.sum(0).double()):
            result.fail("divided by the column sums (how often a class was predicted: its precision); "
                        "per-class accuracy divides by the row sums (how many images truly are that class)")
        else:
            result.fail(f"expected {[round(v, 3) for v in expected.tolist()]}; got "
                        f"{[round(v, 3) for v in answer.tolist()]}")
    return result


add_solution("per_class_accuracy", '''
    def my_per_class_accuracy(matrix):
        matrix = matrix.double()
        return matrix.diagonal() / matrix.sum(1)  # correct / images of that true class
''')


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


add_solution("random_flip", '''
    import torch

    def my_random_flip(images, flip):
        # images: (N, 3, H, W); flip: (N,) booleans. Reverse the width (dimension 3) where flip is True.
        return torch.where(flip.view(-1, 1, 1, 1), images.flip(3), images)
''')
