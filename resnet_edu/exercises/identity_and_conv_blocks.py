"""The checker of notebook 02's shortcut exercise, ``check_downsample``.

Notebook 02's whole-block exercise is checked by ``check_basic_block`` (in :mod:`.residual_block`),
the same checker as notebook 01's, with the Conv Blocks included.
"""

import torch.nn.functional as F

from ..blocks import make_shortcut
from .engine import Case, Mistake, check_against_reference, checking, explain_exception, is_buildable

DOWNSAMPLE_MISTAKES = [
    Mistake("ReLU in the shortcut", lambda r, x: F.relu(r(x)),
            "the projection ends in a ReLU; the shortcut is a 1x1 conv and BN only, the ReLU comes "
            "after the addition."),
]
DOWNSAMPLE_CASES = [
    Case("Identity Block: same shape", (64, 64), {"stride": 1}, (4, 64, 8, 8)),
    Case("Conv Block: stride 2, channels doubled", (64, 128), {"stride": 2}, (4, 64, 8, 8)),
    Case("Conv Block: channels doubled at stride 1", (64, 128), {"stride": 1}, (4, 64, 8, 8)),
    Case("Conv Block: stride 2, same channels", (64, 64), {"stride": 2}, (4, 64, 8, 8)),
]


def _reference_downsample(in_channels, out_channels, stride=1):
    return make_shortcut(in_channels, out_channels, stride, option="B")


def _shape_change(case):
    (in_channels, out_channels), stride = case.args, case.kwargs["stride"]
    changes = [f"{in_channels} -> {out_channels} channels"] if in_channels != out_channels else []
    return ", ".join(changes + ([f"stride {stride}"] if stride != 1 else []))


def _check_downsample_case(result, candidate_function, case, name):
    result.note(f"{case.title}: {case.call_text(name)}")
    try:
        got = candidate_function(*case.args, **case.kwargs)
    except Exception as exc:
        result.fail(f"{case.call_text(name)} raised {explain_exception(exc)}")
        return
    needed = _reference_downsample(*case.args, **case.kwargs) is not None
    if not needed and got is None:
        result.ok("returns None: the block will add x itself")
    elif not needed:
        result.fail(f"returned {type(got).__name__}, expected None: the shape does not change, so "
                    "the shortcut is x itself (no parameters, no computation)")
    elif got is None:
        result.fail(f"returned None, but the shape changes ({_shape_change(case)}), so x and F(x) "
                    "cannot be added: project x whenever stride != 1 or in_channels != out_channels")
    else:
        check_against_reference(result, candidate_function, _reference_downsample, case,
                                DOWNSAMPLE_MISTAKES, name, announce=False)


def check_downsample(candidate_function):
    """Check a learner's ``make_downsample(in_channels, out_channels, stride)``: None when the block
    keeps its shape, else a module that projects x (1x1 conv with the stride, then BN)."""
    name = getattr(candidate_function, "__name__", "make_downsample")
    with checking("downsample", "Checking your shortcut against resnet_edu.blocks.make_shortcut") as result:
        for case in DOWNSAMPLE_CASES if is_buildable(result, candidate_function) else []:
            _check_downsample_case(result, candidate_function, case, name)
    return result
