"""The checkers of notebook 02's exercises.

* ``check_downsample``: exercise 1, the shortcut of a block, None or a projection (1x1 conv + BN).
  The notebook's starter has a mistake for the learner to find, so the notebook runs it with
  ``show_cases=False``: the report then names neither the cases' arguments nor the shape change
  of a failing case, only asks which shape changes the learner's test looks at;
* ``check_zero_pad_shortcut``: exercise 2, the paper's option A, checked against
  ``make_shortcut(..., option="A")`` with its known mistakes named, then on an input of another
  device (``meta`` stands in for a GPU) and dtype (bfloat16), the module moved along with x as a
  training loop moves the model, where zeros made with a bare ``torch.zeros(...)`` fail. A starter
  that still raises NotImplementedError gets one FAIL line and no case, so its report shows no shape;
* ``check_stride_only_shortcut``: exercise 3 (a), where the starter's test of exercise 1 (a
  projection only when the stride is not 1) builds the wrong shortcut in ResNet18 and ResNet50;
* ``check_option_a_resnet50``: exercise 3 (b), what option A would do in ResNet50.
"""

import copy

import torch
import torch.nn.functional as F

from ..blocks import block_kind, make_shortcut
from ..measure import count_parameters
from ..resnet import resnet18, resnet50
from .engine import (FAILED, REFERENCE_MISTAKES, Case, CheckResult, Mistake, _construct, call_learner, catalogue,
                     check_against_reference, checking, explain_exception, is_buildable, is_the_function,
                     matching_mistake, reporting_crashes, same_values)
from .predictions import PREDICTION_MISTAKES, Question, check_predictions

# ---------------------------------------------------------------------------------------- exercise 1

DOWNSAMPLE_MISTAKES = [
    Mistake("relu-in-shortcut", "ReLU in the shortcut", lambda r, x: F.relu(r(x)),
            "the projection ends in a ReLU; the shortcut is a 1x1 conv and BN only, the ReLU comes "
            "after the addition."),
]
DOWNSAMPLE_CASES = [
    Case("Identity Block: same shape", (64, 64), {"stride": 1}, (4, 64, 8, 8)),
    Case("Conv Block: stride 2, channels doubled", (64, 128), {"stride": 2}, (4, 64, 8, 8)),
    Case("Conv Block: channels doubled at stride 1", (64, 128), {"stride": 1}, (4, 64, 8, 8)),
    Case("Conv Block: stride 2, same channels", (64, 64), {"stride": 2}, (4, 64, 8, 8)),
]
DOWNSAMPLE_MISTAKE_IDS = catalogue(REFERENCE_MISTAKES, DOWNSAMPLE_MISTAKES, {
    "needless-projection": "a projection where the shape does not change (the shortcut is x itself)",
})


def _reference_downsample(in_channels, out_channels, stride=1):
    return make_shortcut(in_channels, out_channels, stride, option="B")


def _shape_change(case):
    (in_channels, out_channels), stride = case.args, case.kwargs["stride"]
    changes = [f"{in_channels} -> {out_channels} channels"] if in_channels != out_channels else []
    return ", ".join(changes + ([f"stride {stride}"] if stride != 1 else []))


def _case_heading(case, number, name, show_cases):
    if show_cases:
        return f"{case.title}: {case.call_text(name)}"
    kind = "a Conv Block" if _reference_downsample(*case.args, **case.kwargs) is not None else "an Identity Block"
    return f"Case {number} of {len(DOWNSAMPLE_CASES)}: {kind}"


def _check_projection_quietly(result, candidate_function, case, name):
    """The generic checks of a projection, summed up in one ok line when they all pass (their lines
    name the case's shapes); when one fails, every line is reported as it is."""
    quiet = CheckResult(result.exercise)  # a result prints nothing until a checker prints it
    check_against_reference(quiet, candidate_function, _reference_downsample, case,
                            DOWNSAMPLE_MISTAKES, name, announce=False)
    if quiet.passed:
        result.ok("returns a projection that equals the reference's (output shape, gradients, no bias "
                  "before BN, parameter count, outputs with the reference's weights)")
        return
    result.lines.extend(quiet.lines)


def _check_downsample_case(result, candidate_function, case, number, name, show_cases):
    result.note(_case_heading(case, number, name, show_cases))
    got = call_learner(result, case.call_text(name), candidate_function, *case.args, **case.kwargs,
                       mistake="constructor-raises")
    if got is FAILED:
        return
    needed = _reference_downsample(*case.args, **case.kwargs) is not None
    if not needed and got is None:
        result.ok("returns None: the block will add x itself")
    elif not needed:
        result.fail("needless-projection",
                    f"returned {type(got).__name__}, expected None: the shape does not change, so "
                    "the shortcut is x itself (no parameters, no computation)")
    elif got is None and show_cases:
        result.fail("missing-projection",
                    f"returned None, but the shape changes ({_shape_change(case)}), so x cannot be "
                    "added to F(x) as it is. Which shape changes does your test for None look at?")
    elif got is None:
        result.fail("missing-projection",
                    "returned None, but in this case x and F(x) cannot be added as they are. Which "
                    "shape changes does your test for None look at, and which can a block make? "
                    f"(To see the cases' arguments: check_downsample({name}, show_cases=True).)")
    elif show_cases:
        check_against_reference(result, candidate_function, _reference_downsample, case,
                                DOWNSAMPLE_MISTAKES, name, announce=False)
    else:
        _check_projection_quietly(result, candidate_function, case, name)


def check_downsample(candidate_function, show_cases=True):
    """Check a learner's ``make_downsample(in_channels, out_channels, stride)``: None when the block
    keeps its shape, else a module that projects x (1x1 conv with the stride, then BN).

    ``show_cases=False`` numbers the four cases instead of naming their arguments, and reports a
    None where a projection is needed as a question, without the shape change: the notebook's
    starter has a mistake to find, and its stored report must not point at it.
    """
    name = getattr(candidate_function, "__name__", "make_downsample")
    title = "Checking your shortcut against resnet_edu.blocks.make_shortcut"
    with checking("downsample", title, DOWNSAMPLE_MISTAKE_IDS) as result:
        cases = DOWNSAMPLE_CASES if is_the_function(result, candidate_function, "make_downsample") else []
        for number, case in enumerate(cases, start=1):
            _check_downsample_case(result, candidate_function, case, number, name, show_cases)
    return result


# ---------------------------------------------------------------------------------------- exercise 3 (a)


def residual_blocks(model):
    """Every block of a ResNet's four stages, in order."""
    return [block for stage in (model.layer1, model.layer2, model.layer3, model.layer4) for block in stage]


def blocks_a_stride_only_test_gets_wrong(model):
    """How many blocks of ``model`` the test "project when stride != 1" gets wrong: the blocks where
    it disagrees with the shortcut the model built (a projection exactly where the shape changes)."""
    return sum((block.stride != 1) != (block.downsample is not None) for block in residual_blocks(model))


STRIDE_ONLY_QUESTIONS = [
    Question("wrong_in_resnet18",
             "1. in how many blocks of ResNet18 the starter's test of exercise 1 builds the wrong shortcut",
             lambda: blocks_a_stride_only_test_gets_wrong(resnet18()),
             hint="Section 2's table lists every block of ResNet18 with its channels and stride."),
    Question("wrong_in_resnet50", "2. in how many blocks of ResNet50 it builds the wrong shortcut",
             lambda: blocks_a_stride_only_test_gets_wrong(resnet50()),
             hint="Look for blocks whose shape changes although their stride is 1."),
]


def check_stride_only_shortcut(answers):
    """Exercise 3 (a): where the starter's test of exercise 1 (a projection only when stride != 1), the
    test of a common from-scratch ResNet18, goes wrong."""
    return check_predictions("stride_only_shortcut", "Checking your answers against the built models",
                             STRIDE_ONLY_QUESTIONS, answers)


# ---------------------------------------------------------------------------------------- exercise 2


def _pad_channels(x, before, after):
    return F.pad(x, (0, 0, 0, 0, before, after))  # F.pad names the last dimension first: W, H, C


ZERO_PAD_CASES = [  # the titles name no model: the third case is exercise 3's answer
    Case("ResNet18's layer2[0], 64 -> 128 channels, stride 2", (64, 128, 2), {}, (2, 64, 8, 8)),
    Case("an odd size, 32 -> 64 channels, stride 2", (32, 64, 2), {}, (2, 32, 7, 7)),
    Case("more channels at stride 1, 64 -> 256", (64, 256, 1), {}, (2, 64, 8, 8)),
]

ORDER_OF_CHANNELS = ("The paper does not say where the zero channels go, and a network trained from "
                     "scratch works with any fixed place, but make_shortcut, the reference, keeps "
                     "channel c of x at channel c and puts all the zeros after x's channels; follow "
                     "that convention here.")
ONE_PIXEL_PER_WINDOW = ("Option A is the identity performed with a stride of 2 (the paper, section "
                        "3.3): it keeps one pixel of each 2 x 2 window, the one that option B's "
                        "strided 1x1 convolution reads too.")

ZERO_PAD_MISTAKES = [  # each computes what the reference r would output with the mistake
    Mistake("zeros-before-x", "zeros before x",
            lambda r, x: _pad_channels(x[:, :, ::r.stride, ::r.stride], r.extra_channels, 0),
            "your shortcut puts the zero channels first and x's channels after them. " + ORDER_OF_CHANNELS),
    Mistake("zeros-on-both-sides", "zeros on both sides of x",
            lambda r, x: _pad_channels(x[:, :, ::r.stride, ::r.stride], r.extra_channels // 2,
                                       r.extra_channels - r.extra_channels // 2),
            "your shortcut puts half the zero channels before x's channels and half after them (as "
            "a popular CIFAR-10 implementation, akamaster/pytorch_resnet_cifar10, does). "
            + ORDER_OF_CHANNELS),
    Mistake("wrong-pixels", "the wrong pixels",
            lambda r, x: _pad_channels(x[:, :, r.stride - 1::r.stride, r.stride - 1::r.stride], 0,
                                       r.extra_channels),
            "your shortcut keeps the pixels in the odd rows and columns. The branch's 3x3 "
            "convolution (padding 1, stride 2) centres its output pixel (i, j) on input pixel "
            "(2i, 2j), an even row and column, and option B's 1x1 convolution with stride 2 reads "
            "that pixel too. Keep the pixels the branch is centred on, so that the two terms of the "
            "sum describe the same place of the image."),
    Mistake("average-pooling", "average pooling",
            lambda r, x: _pad_channels(F.avg_pool2d(x, r.stride), 0, r.extra_channels),
            "your shortcut averages each 2 x 2 window. " + ONE_PIXEL_PER_WINDOW + " (Averaging "
            "before a projection is a later design, ResNet-D in Tong He et al. 2019, 'Bag of Tricks for "
            "Image Classification with Convolutional Neural Networks'.)"),
    Mistake("max-pooling", "max pooling",
            lambda r, x: _pad_channels(F.max_pool2d(x, r.stride), 0, r.extra_channels),
            "your shortcut keeps the largest value of each 2 x 2 window. " + ONE_PIXEL_PER_WINDOW),
]


ZERO_PAD_MISTAKE_IDS = catalogue(REFERENCE_MISTAKES, ZERO_PAD_MISTAKES, {
    "not-written-yet": "the starter's NotImplementedError is still there",
    "has-parameters": "the shortcut has learnable parameters (option A has none)",
    "padded-height-or-width": "the zeros went into the height or the width, not the channels",
    "appended-channels-not-zero": "the appended channels are not zero",
    "wrong-values": "the right shape, but values that match no known mistake",
    "gradient-does-not-reach-x": "backward does not reach x through the shortcut",
    "zeros-on-wrong-device": "the zeros are made on the CPU whatever device x is on",
    "zeros-of-wrong-dtype": "the zeros are made in float32 whatever dtype x has",
})


def _grew(got, x_shape):
    return got[2] > x_shape[2] or got[3] > x_shape[3]


def _zero_pad_shape_problem(got, expected, x_shape, stride):
    """(mistake id, words): how the output's shape differs from the reference's (None if it does not)."""
    if got == expected:
        return None
    if len(got) != 4:
        return "wrong-output-shape", f"expected a 4-dimensional output (N, C, H, W) of shape {expected}, got {got}"
    if got == x_shape:
        return "wrong-output-shape", (f"returned a tensor of x's own shape {x_shape}; the branch of this block "
                                      f"puts out {expected}, and the two are added")
    problems = []
    if got[2:] != expected[2:] and _grew(got, x_shape):
        problems.append(f"height and width {got[2]} x {got[3]} from a {x_shape[2]} x {x_shape[3]} "
                        "input: the zeros went into the height or the width. F.pad's tuple names the "
                        "last dimension first (width, then height, then channels)")
    elif got[2:] != expected[2:]:
        problems.append(f"height and width {got[2]} x {got[3]}, expected {expected[2]} x {expected[3]}: "
                        f"the branch's 3x3 convolution (padding 1, stride {stride}) turns {x_shape[2]} "
                        f"rows into ceil({x_shape[2]} / {stride}) = {expected[2]}")
    if got[1] != expected[1]:
        problems.append(f"{got[1]} channels, expected {expected[1]} (the branch's output channels)")
    mistake = "padded-height-or-width" if _grew(got, x_shape) else "wrong-output-shape"
    return mistake, "wrong output shape: " + "; ".join(problems or [f"expected {expected}, got {got}"])


def _zero_pad_value_problem(out, expected, reference, x):
    """(mistake id, words): what is wrong with an output of the right shape (None if it equals the reference's)."""
    if same_values(out, expected):
        return None
    mistake = matching_mistake(out, ZERO_PAD_MISTAKES, lambda m: m.output(reference, x))
    if mistake is not None:
        return mistake.id, f"{mistake.name}: {mistake.explanation}"
    kept = x.shape[1]
    if same_values(out[:, :kept], expected[:, :kept]):
        return "appended-channels-not-zero", ("the appended channels are not all zero (torch.empty leaves whatever "
                                              "was in memory; ones or a copy of x are not zero-padding)")
    return "wrong-values", ("the shape is right but the values differ from the reference's: check which pixels "
                            "you keep and in which channels x's values end up")


IN_PLACE_ON_X = "requires grad is being used in an in-place operation"  # x, or a view of it, changed in place
DETACHED = ("build the output from x with torch operations (no .detach(), .data or NumPy), so that backward "
            "flows through it")


def _backward_failure(exc):
    """(mistake id, words) for an exception of forward and backward with a gradient on x: an in-place
    change of x (which backward of the block's branch would need as it was), or a cut graph."""
    if IN_PLACE_ON_X in str(exc):
        return "modifies-input", (f"forward changes its input x in place, which the block's branch reads too: "
                                  f"run with a gradient on x, as in training, it raised {explain_exception(exc)}")
    return "gradient-does-not-reach-x", (f"the gradient cannot reach x: forward and backward with a gradient on x "
                                         f"raised {explain_exception(exc)}. To fix it, {DETACHED}")


def _gradient_reaches_x(result, module, reference, x):
    """Whether backward through the learner's shortcut gives x the reference's gradient; None (and a
    FAIL line naming the cause) when forward or backward raises."""
    mine, theirs = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    try:
        module(mine).sum().backward()
    except Exception as exc:  # the learner's forward, now with a gradient: report, never raise
        result.fail(*_backward_failure(exc))
        return None
    reference(theirs).sum().backward()
    return mine.grad is not None and torch.equal(mine.grad, theirs.grad)


def _run_shortcut(result, module, x, call):
    """The learner's shortcut on x, without gradients; None (and a FAIL line) if it fails."""
    with torch.no_grad():
        out = call_learner(result, f"forward of {call}", module, x.clone(), mistake="forward-raises")
    if out is FAILED:
        return None
    if not isinstance(out, torch.Tensor):
        result.fail("not-a-tensor",
                    f"forward returned {type(out).__name__}, expected a tensor: end forward with return")
        return None
    return out


ON_X = ("build the zeros from x, so that they follow it to its device and dtype: x.new_zeros(...), or "
        "torch.zeros(..., device=x.device, dtype=x.dtype); F.pad does that by itself")


def _device_or_dtype_problem(module, x):
    """(mistake id, words) when the shortcut gives a tensor of x's device or dtype only on the CPU in
    float32. The meta device (shapes, no values) stands in for a GPU; bfloat16 for mixed precision.
    A copy of the module moves with x, as ``model.to(device)`` moves a shortcut's buffers."""
    meta, moved = x.to("meta"), copy.deepcopy(module)
    try:
        with torch.no_grad():
            out = moved.to("meta")(meta)
        if out.device == meta.device:
            out = None
    except Exception:  # typically "Tensor on device cpu is not on the expected device meta"
        out = "raised"
    if out is not None:
        return "zeros-on-wrong-device", ("on a GPU your shortcut would fail: given x on another device, with the "
                                         "shortcut moved there too as model.to(device) moves it (the meta "
                                         "device stands in for a GPU here), it makes its zeros on the CPU. "
                                         f"To fix it, {ON_X}")
    half = x.to(torch.bfloat16)
    with torch.no_grad():
        out = copy.deepcopy(module).to(torch.bfloat16)(half)
    if out.dtype != half.dtype:
        return "zeros-of-wrong-dtype", (f"given x in bfloat16 (as under mixed precision), your shortcut returns "
                                        f"{out.dtype}: its zeros are float32 and turn the sum into float32. "
                                        f"To fix it, {ON_X}")
    return None


def _check_zero_pad_case(result, candidate_class, case, name):
    result.note(f"{case.title}: {case.call_text(name)} on an input of shape {case.input_shape}")
    module = _construct(result, candidate_class, case, name)
    if module is None:
        return
    parameters = count_parameters(module)
    if parameters:
        result.fail("has-parameters", f"it has {parameters:,} learnable parameters, but option A has none: it is "
                    "built from x's own values and zeros alone (a 1x1 convolution is option B's projection)")
        return
    result.ok("no learnable parameters")
    reference = make_shortcut(*case.args, option="A")
    x = torch.randn(case.input_shape, generator=torch.Generator().manual_seed(0))
    out = _run_shortcut(result, module, x, case.call_text(name))
    if out is None:
        return
    expected = reference(x)
    shapes = tuple(out.shape), tuple(expected.shape), tuple(x.shape)
    problem = (_zero_pad_shape_problem(*shapes, stride=case.args[2])
               or _zero_pad_value_problem(out, expected, reference, x))
    if problem:
        result.fail(*problem)
        return
    in_channels, out_channels, stride = case.args
    result.ok(f'equals make_shortcut({in_channels}, {out_channels}, {stride}, option="A") on a random input, '
              f"shape {tuple(expected.shape)}")
    _check_gradient(result, module, reference, x)


def _check_gradient(result, module, reference, x):
    reaches = _gradient_reaches_x(result, module, reference, x)
    if reaches:
        result.ok("the gradient reaches x through the pixels the shortcut keeps")
    elif reaches is not None:
        result.fail("gradient-does-not-reach-x", f"the gradient does not reach x as it should: {DETACHED}")


def _check_device_and_dtype(result, candidate_class):
    """Once the cases pass: the first case's shortcut on x of another device, and of another dtype."""
    case = ZERO_PAD_CASES[0]
    result.note(f"On another device and dtype: {case.call_text(getattr(candidate_class, '__name__', 'it'))}")
    problem = _device_or_dtype_problem(candidate_class(*case.args), torch.randn(case.input_shape))
    if problem:
        result.fail(*problem)
    else:
        result.ok("works on x's own device and dtype (checked on the meta device and in bfloat16)")


def _not_written_yet(result, candidate_class, name):
    """True, with one FAIL line, when the learner's class raises NotImplementedError (the starter's
    TODO) on the first case; the report then names no case, so it shows none of their shapes."""
    case = ZERO_PAD_CASES[0]
    where = "building it"
    try:
        module = candidate_class(*case.args, **case.kwargs)
        where = "its forward"
        with torch.no_grad():
            module(torch.zeros(case.input_shape))
    except NotImplementedError as exc:
        message = f' ("{exc}")' if str(exc) else ""
        result.fail("not-written-yet", f"{name} is not written yet: {where} raises NotImplementedError{message}. "
                    "Replace the raise with your code, then run the check again.")
        return True
    except Exception:
        return False  # the cases report it, in plain words
    return False


def check_zero_pad_shortcut(candidate_class):
    """Check a learner's option A shortcut, ``MyZeroPadShortcut(in_channels, out_channels, stride)``,
    against ``make_shortcut(..., option="A")``: x subsampled with the stride, zero channels appended,
    on x's own device and in its dtype."""
    name = getattr(candidate_class, "__name__", "your shortcut")
    title = 'Checking your shortcut against make_shortcut(..., option="A")'
    with checking("zero_pad_shortcut", title, ZERO_PAD_MISTAKE_IDS) as result:
        ready = is_buildable(result, candidate_class) and not _not_written_yet(result, candidate_class, name)
        for case in ZERO_PAD_CASES if ready else []:
            with reporting_crashes(result):
                _check_zero_pad_case(result, candidate_class, case, name)
        if ready and result.passed:
            with reporting_crashes(result):
                _check_device_and_dtype(result, candidate_class)
    return result


# ---------------------------------------------------------------------------------------- exercise 3 (b)


def channels_carrying_x(in_channels, out_channels, stride):
    """How many channels of option A's shortcut hold values of x (the others are zero padding)."""
    shortcut = make_shortcut(in_channels, out_channels, stride, option="A")
    y = shortcut(torch.randn(1, in_channels, 8, 8))
    return int((y.abs().sum(dim=(0, 2, 3)) > 0).sum())


def padded_blocks(model):
    """How many blocks of ``model`` have option A's zero-padding shortcut."""
    return sum(block_kind(block) == "Pad Block" for block in residual_blocks(model))


OPTION_A_RESNET50_QUESTIONS = [
    Question("padded_blocks",
             "1. how many blocks of ResNet50 get a zero-padded shortcut under option A",
             lambda: padded_blocks(resnet50(shortcut="A")),
             hint="A block needs one wherever its shape changes; remember stage 1."),
    Question("channels_carrying_x", "2. how many channels of option A's shortcut in the first of "
             "them carry x", lambda: channels_carrying_x(64, 256, 1),
             hint="Option A adds no information to x: it keeps x's values and appends zeros."),
    Question("parameters_b_adds",
             "3. how many parameters option B adds to ResNet50 over option A (within 0.5%)",
             lambda: count_parameters(resnet50()) - count_parameters(resnet50(shortcut="A")),
             tolerance=0.005,  # tight enough to reject the answer that forgets stage 1's projection (0.6% low)
             hint="Each padded block becomes a projection: a 1x1 convolution with in x out weights, "
                  "then a BN with 2 x out."),
]


def check_option_a_resnet50(answers):
    """Exercise 3 (b): what option A would do in ResNet50."""
    return check_predictions("option_a_resnet50", "Checking your answers against the built models",
                             OPTION_A_RESNET50_QUESTIONS, answers)


# every mistake this module's checkers can report
MISTAKE_IDS = catalogue(DOWNSAMPLE_MISTAKE_IDS, ZERO_PAD_MISTAKE_IDS, PREDICTION_MISTAKES)
