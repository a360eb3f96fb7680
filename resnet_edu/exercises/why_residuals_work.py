"""The checkers of notebook 06: ``check_plain_twin`` (exercise 1, the plain twin of a residual
stage) and ``check_deletion_predictions`` (exercise 2, predict what deleting blocks does, then check
against the notebook's own measurements).
"""

import itertools

import torch
from torch import nn

from ..blocks import BasicBlock, PlainBlock
from ..resnet import make_stage
from .engine import (FAILED, call_learner, catalogue, checking, one_cause_for_shape_mismatch,
                     randomise_batchnorm, reporting_crashes, same_values)
from .predictions import PREDICTION_MISTAKES, Question, check_predictions

# (what the stage is, make_stage's arguments after the block: in_channels, width, blocks, stride)
TWIN_CASES = [
    ("ResNet-20's layer1 (three Identity Blocks at 16 channels)", (16, 16, 3, 1)),
    ("ResNet-20's layer2 (a Pad Block with stride 2, then two Identity Blocks at 32 channels)", (16, 32, 3, 2)),
]


TWIN_MISTAKES = {
    "not-callable": "the answer is not a function",
    "function-raises": "plain_twin(stage) raised an exception",
    "not-a-module": "plain_twin(stage) returned something other than an nn.Module",
    "changed-the-stage": "plain_twin changed the residual stage it was given",
    "forward-raises": "the twin's forward raised an exception",
    "wrong-output-shape": "the twin's output has another shape than the stage's",
    "shortcuts-kept": "the twin still adds its shortcuts",
    "no-final-relu": "the twin's blocks end without their ReLU",
    "weights-not-copied": "the twin's convolutions do not hold the stage's weights",
    "bn-statistics-not-copied": "the twin's BatchNorms do not hold the stage's statistics",
    "batchnorm-missing": "the twin has fewer BatchNorms than the stage",
    "stride-on-wrong-conv": "the twin's convolutions have other strides than the stage's",
    "layers-in-another-order": "the twin holds the stage's weights and statistics but computes something else",
    "shares-weights": "the twin shares weight tensors with the stage",
    "check-could-not-finish": "the learner's code broke the check itself",
}


def _residual_stage(in_channels, width, blocks, stride):
    stage = make_stage(BasicBlock, in_channels, width, blocks, stride, shortcut="A")
    randomise_batchnorm(stage, torch.Generator().manual_seed(0))  # every layer matters in eval mode
    return stage.eval()


def _reference_twin(stage, in_channels, width, blocks, stride):
    twin = make_stage(PlainBlock, in_channels, width, blocks, stride, shortcut=None)
    twin.load_state_dict(stage.state_dict())
    return twin.eval()


def _without_final_relus(twin, x):
    for block in twin:
        x = block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x)))))
    return x


def _convs(module):
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)]


def _conv_weights(module):
    return [m.weight for m in _convs(module)]


def _strides(module):
    return [m.stride for m in _convs(module)]


def _batchnorms(module):
    return [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]


def _bn_state(module):
    return [t for m in _batchnorms(module) for t in (m.weight, m.bias, m.running_mean, m.running_var)]


def _blocks_with_shortcuts(out, stage, reference, x):
    """The numbers of the blocks whose shortcuts the learner's twin kept, if keeping some (not all,
    not none) explains its output; else None. ``reference`` is the stage's plain twin."""
    n = len(stage)
    for kept in itertools.chain.from_iterable(itertools.combinations(range(n), k) for k in range(1, n)):
        mixed = nn.Sequential(*(stage[i] if i in kept else reference[i] for i in range(n)))
        if same_values(out, mixed(x)):
            return kept
    return None


def _same_tensors(mine, theirs):
    return len(mine) == len(theirs) and all(a.shape == b.shape and torch.equal(a, b) for a, b in zip(mine, theirs))


def _name_the_difference(out, residual_out, reference, x, twin, stage):
    """(mistake id, words): why the learner's twin computes something else than the stage's plain twin."""
    with torch.no_grad():
        if same_values(out, residual_out):
            return "shortcuts-kept", ("the twin computes exactly what the residual stage computes: its shortcuts "
                                      "are still there. What does a plain block add to its branch before the last "
                                      "ReLU?")
        if same_values(out, _without_final_relus(reference, x)):
            return "no-final-relu", "the blocks end without their ReLU: a plain block is conv-BN-ReLU-conv-BN-ReLU."
        kept = _blocks_with_shortcuts(out, stage, reference, x)
        if kept:
            blocks = " and ".join(str(i) for i in kept)
            return "shortcuts-kept", (f"the twin's block{'s' if len(kept) > 1 else ''} {blocks} (counting from 0) "
                                      "still add their shortcuts, while the others are plain: in a plain twin no "
                                      "block adds anything to its branch.")
        mine, theirs = _conv_weights(twin), _conv_weights(stage)
        if len(mine) > len(theirs):
            return "weights-not-copied", (f"the twin has {len(mine)} convolutions, the stage {len(theirs)}: a plain "
                                          "twin has the stage's convolutions and no other (no 1x1 projection).")
        if not _same_tensors(mine, theirs):
            return "weights-not-copied", (f"the twin's {len(mine)} convolutions do not hold the stage's {len(theirs)} "
                                          "convolutions' weights (a newly built block starts from fresh random "
                                          "weights): copy each block's weights into its twin.")
        difference = float((out - reference(x)).abs().max())
        bns, expected_bns = len(_batchnorms(twin)), len(_batchnorms(stage))
        if bns < expected_bns:
            return "batchnorm-missing", (f"the twin has {bns} BatchNorm layers, the stage {expected_bns}: "
                                         "a plain block keeps both of its BatchNorms, conv-BN-ReLU-conv-BN-ReLU.")
        if _strides(twin) != _strides(stage):
            return "stride-on-wrong-conv", (f"the twin's convolutions have strides {_strides(twin)}, the stage's "
                                            f"{_strides(stage)}: keep each convolution's stride as the stage has it.")
        if _same_tensors(_bn_state(twin), _bn_state(stage)):
            return "layers-in-another-order", (f"the twin holds the stage's weights and BatchNorm statistics, yet its "
                                               f"outputs differ from the stage's plain twin by up to {difference:.3g}: "
                                               "compare the order of the layers in each block with "
                                               "conv-BN-ReLU-conv-BN-ReLU.")
    return "bn-statistics-not-copied", (f"the outputs differ from the stage's plain twin by up to {difference:.3g}, "
                                        "though the convolutions hold the stage's weights: do the BatchNorms hold "
                                        "the stage's statistics too?")


def _change_to_the_stage(stage, before, x, residual_out):
    """How plain_twin changed the stage, in words (None if it did not): its weights or statistics, its
    blocks, or what it computes (a block's forward replaced leaves the first two as they were)."""
    if any(not torch.equal(before[name], tensor) for name, tensor in stage.state_dict().items()):
        return "its weights or BatchNorm statistics are not what they were"
    if any(isinstance(m, PlainBlock) for m in stage.modules()):
        return "it now holds plain blocks"
    try:
        with torch.no_grad():
            out = stage.eval()(x.clone())  # in eval mode, as it ran before: a change of mode alone is not counted
    except Exception:  # noqa: BLE001 - a stage that no longer runs has been changed
        return "it no longer runs on the input it computed before"
    if not same_values(out, residual_out):
        return "on the same input it no longer computes what it computed before the call"
    return None


# A shape mismatch in the twin's forward is an addition: the twin still adds a block's input to its
# branch, which a plain block never does.
_forward_failure, _explain_forward_failure = one_cause_for_shape_mismatch(
    "shortcuts-kept", "forward-raises",
    "two tensors of different shapes were added, so the twin still adds each block's input to its branch, and "
    "where a block changes the shape, its input no longer fits. A plain block adds nothing: its output is its "
    "branch's, after the last ReLU.")


def _check_case(result, plain_twin, title, args):
    stage = _residual_stage(*args)
    x = torch.relu(torch.randn(2, args[0], 8, 8))  # a stage's input comes out of a ReLU
    before = {name: tensor.clone() for name, tensor in stage.state_dict().items()}
    with torch.no_grad():
        residual_out = stage(x)
    twin = call_learner(result, f"{title}: plain_twin(stage)", plain_twin, stage, mistake="function-raises")
    if twin is FAILED:
        return
    if not isinstance(twin, nn.Module):
        result.fail("not-a-module", f"{title}: plain_twin(stage) returned {type(twin).__name__}; expected an "
                    "nn.Module, e.g. an nn.Sequential of blocks")
        return
    change = _change_to_the_stage(stage, before, x, residual_out)
    if change:
        result.fail("changed-the-stage", f"{title}: plain_twin changed the residual stage it was given ({change}); "
                    "leave it as it is and build a new module")
        return
    reference = _reference_twin(stage, *args)
    with torch.no_grad():
        out = call_learner(result, f"{title}: the twin's forward on an input of shape {tuple(x.shape)}",
                           twin.eval(), x.clone(), mistake=_forward_failure, explain=_explain_forward_failure)
        expected = reference(x)
    if out is FAILED:
        return
    if not isinstance(out, torch.Tensor) or out.shape != expected.shape:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        result.fail("wrong-output-shape", f"{title}: the twin's output has shape {shape}, the stage's "
                    f"{tuple(expected.shape)}")
    elif same_values(out, expected):
        result.ok(f"{title}: the twin computes the stage without its shortcuts, with the stage's weights")
    else:
        mistake, text = _name_the_difference(out, residual_out, reference, x, twin, stage)
        result.fail(mistake, f"{title}: {text}")
    shared = {p.data_ptr() for p in stage.parameters()} & {p.data_ptr() for p in twin.parameters()}
    if shared:
        result.fail("shares-weights", f"{title}: the twin shares {len(shared)} weight tensors with the stage, so "
                    "training one would change the other; give the twin copies (load_state_dict copies)")


def check_plain_twin(plain_twin):
    """Check a learner's ``plain_twin(stage)``: a new module that computes a residual stage (an
    nn.Sequential of BasicBlocks with option A shortcuts) without its shortcuts, with its weights."""
    with checking("plain_twin", "Checking plain_twin(stage) on two stages of ResNet-20", TWIN_MISTAKES) as result:
        if not callable(plain_twin):
            result.fail("not-callable", f"expected a function plain_twin(stage), got {type(plain_twin).__name__}")
            return result
        for title, args in TWIN_CASES:
            with reporting_crashes(result):
                _check_case(result, plain_twin, title, args)
    return result


DELETION_MISTAKES = catalogue(PREDICTION_MISTAKES, {
    "no-measurements": "the checker was called before the sweep that it checks against was run",
})


def check_deletion_predictions(answers, residual_drops=None, plain_accuracy_without=None):
    """Exercise 2 of notebook 06, checked against the notebook's measurements.

    residual_drops:          {block name: accuracy lost by ResNet-56 when that block alone is deleted}
    plain_accuracy_without:  {block name: plain-56's accuracy with that block alone deleted}
    """
    if residual_drops is None or plain_accuracy_without is None:
        with checking("deletion_predictions", "Checking your predictions about deleted blocks",
                      DELETION_MISTAKES) as result:
            result.fail("no-measurements", "no measurements to check against: run the sweep of section 5 first, then "
                        "check_deletion_predictions(my_predictions, drops, without['plain56'])")
        return result
    questions = [
        Question("worst_stage", "the stage of the ResNet-56 block whose deletion costs the most accuracy",
                 lambda: max(residual_drops, key=residual_drops.get).split(".")[0],
                 hint="'layer1', 'layer2' or 'layer3'. Deleting any residual block leaves its shortcut: whose "
                      "branch changes the signal most for the blocks after it? Veit et al. found the blocks "
                      "that downsample for a fully trained ResNet-110; a network trained for fewer steps may differ."),
        Question("plain_accuracy_without_layer2.4", "plain-56's test accuracy with block layer2.4 deleted",
                 lambda: plain_accuracy_without["layer2.4"], within=0.1,
                 hint="a fraction from 0 to 1 (within 0.1 of the measured value). What do the blocks after it "
                      "receive instead of what they learned to expect?"),
    ]
    return check_predictions("deletion_predictions", "Checking your predictions about deleted blocks",
                             questions, answers, DELETION_MISTAKES)


MISTAKE_IDS = catalogue(TWIN_MISTAKES, DELETION_MISTAKES)  # every mistake this module's checkers can report
