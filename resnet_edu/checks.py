"""Exercise checkers: run a learner's module against the reference in ``resnet_edu`` and say, in
plain words, what is right and what is wrong.

A checker prints a short report (one ``ok`` or ``FAIL`` line per fact it checked) and returns a
:class:`CheckResult` that is truthy when everything passed. It never raises on a wrong answer, so a
notebook still runs top to bottom while the exercise cell is unfinished. ``show_solution(name)``
prints the reference solution of an exercise, which stays out of sight until asked for.

The engine (first section) is shared by every checker; adding one takes three steps:

1. describe the cases: ``Case(title, args, kwargs, input_shape)``, e.g. an Identity Block and a
   stride-2 Conv Block;
2. name the known mistakes as functions of the *reference* module and the input, each computing
   what the reference would output if it made that mistake (:class:`Mistake`);
3. call :func:`check_against_reference` for each case inside ``with checking(title) as result:``,
   and register the solution with :func:`add_solution`.

The engine builds the learner's module, runs it, compares the output shape, runs backward, looks
for convolutions with a bias in front of BN and for parameters that never get a gradient, counts
the parameters, then copies the reference's weights into the learner's module (matching layers
by name, or else by the order they run in and their shapes, so other names work) and compares
outputs; where they differ it names the known mistake whose output matches.
"""

import contextlib
import textwrap
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import BasicBlock, make_shortcut
from .inspect import count_parameters

SEED = 0
ATOL, RTOL = 1e-5, 1e-4  # float32 rounding; a real mistake changes outputs by far more

# ---------------------------------------------------------------------------------------- engine


@dataclass
class CheckResult:
    """The lines of one check: ``passed`` is True when at least one check ran and none failed."""

    exercise: str
    lines: list = field(default_factory=list)

    def _add(self, status, text):
        self.lines.append((status, text))
        indent = "\n" + " " * 8
        print(f"  {status:<5} " + indent.join(textwrap.wrap(text, 92)))

    def ok(self, text):
        self._add("ok", text)

    def fail(self, text):
        self._add("FAIL", text)

    def note(self, text):
        print(text)

    @property
    def failures(self):
        return [text for status, text in self.lines if status == "FAIL"]

    @property
    def passed(self):
        return bool(self.lines) and not self.failures

    def __bool__(self):
        return self.passed

    def __repr__(self):
        verdict = "passed" if self.passed else f"{len(self.failures)} problem(s)"
        return f"<{self.exercise} check: {verdict}>"


@contextlib.contextmanager
def checking(exercise, title):
    """Print a header, yield a CheckResult, print the verdict; seeded without touching the caller's RNG."""
    result = CheckResult(exercise)
    print(title)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        yield result
    if result.passed:
        print(f"All {len(result.lines)} checks passed.")
    else:
        print(f"{len(result.failures)} problem(s). Fix the first FAIL line and run the check again; "
              f'show_solution("{exercise}") prints a solution.')


@dataclass
class Case:
    """One way to build the module under test, e.g. Case("Identity Block", (64, 64), {"stride": 1})."""

    title: str
    args: tuple
    kwargs: dict
    input_shape: tuple

    def call_text(self, name):
        arguments = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{name}({', '.join(arguments)})"


@dataclass
class Mistake:
    """A known mistake: ``output(reference, x)`` computes what the reference would give with it."""

    name: str
    output: Callable
    explanation: str


def explain_exception(exc):
    """Turn an exception from the learner's code into plain words and a next step."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    raw = f"{type(exc).__name__}: {message}"
    hints = [
        ("must match the size of tensor", "two tensors of different shapes were added. In a residual "
         "block this is the shortcut: when the stride or the channel count changes, x must be "
         "projected (a 1x1 convolution with the block's stride, then BN) before the addition."),
        ("channels, but got", "a convolution received a different number of channels than it was "
         "built for: the first layer takes in_channels, every later layer out_channels."),
        ("running_mean should contain", "a BatchNorm2d was built for the wrong number of channels: "
         "it takes the out_channels of the convolution in front of it."),
        ("before Module.__init__() call", "call super().__init__() on the first line of __init__."),
        ('missing the required "forward"', "define a forward(self, x) method (check its indentation: "
         "it belongs inside the class)."),
        ("modified by an inplace operation", "an in-place operation overwrote a tensor that backward "
         "needs, e.g. out += identity on the output of ReLU(inplace=True), or an in-place ReLU "
         "applied to x; write out = out + identity, or use ReLU(inplace=False) there."),
    ]
    for needle, hint in hints:
        if needle in message:
            return f"{raw}. In plain words: {hint}"
    return raw


def is_buildable(result, candidate):
    """False (and a FAIL line) when the learner passed a built module instead of its class."""
    if isinstance(candidate, nn.Module):
        name = type(candidate).__name__
        result.fail(f"expected the class {name} itself, got an instance of it: pass {name}, "
                    f"not {name}(...)")
        return False
    if not callable(candidate):
        result.fail(f"expected a class or function, got {type(candidate).__name__}")
        return False
    return True


def _construct(result, factory, case, name):
    """Build the learner's module for one case; None (and a FAIL line) if that fails."""
    call = case.call_text(name)
    try:
        module = factory(*case.args, **case.kwargs)
    except Exception as exc:  # the learner's constructor: report, never raise
        result.fail(f"{call} raised {explain_exception(exc)}")
        return None
    if not isinstance(module, nn.Module):
        result.fail(f"{call} returned {type(module).__name__}, expected an nn.Module "
                    "(subclass nn.Module and call super().__init__())")
        return None
    return module


def _has_projection(module):
    return any(isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) for m in module.modules())


def _forward(result, module, x, call, reference):
    """Run forward on a copy of x; None (and a FAIL line) if it fails or returns a non-tensor."""
    inp = x.clone()
    try:
        out = module(inp)
    except Exception as exc:
        missing = _has_projection(reference) and not _has_projection(module)
        prefix = "missing projection: " if missing else ""
        result.fail(f"{prefix}forward of {call} on an input of shape {tuple(x.shape)} raised "
                    f"{explain_exception(exc)}")
        return None
    if not isinstance(out, torch.Tensor):
        result.fail(f"forward of {call} returned {type(out).__name__}, expected a tensor: "
                    "end forward with return out")
        return None
    if not torch.equal(inp, x):
        result.fail("forward changed its input x in place (an in-place ReLU or += on x): the layer "
                    "before the block may need x for its backward pass; work on a new tensor instead")
    return out


def _backward(result, module, x):
    """Train-mode forward and backward: catches in-place errors and layers that forward never uses."""
    module.train()
    try:
        module(x.clone()).sum().backward()
    except Exception as exc:
        result.fail(f"backward failed: {explain_exception(exc)}")
        return
    unused = [name for name, p in module.named_parameters() if p.grad is None]
    if unused:
        result.fail(f"these parameters get no gradient, so forward never uses them: {unused}")
    else:
        result.ok("backward runs and every parameter gets a gradient")
    module.zero_grad(set_to_none=True)


def conv_bn_units(module, x):
    """[(conv, bn or None)] in the order forward runs the convolutions.

    A BN belongs to the convolution that ran just before it: in a block every BN normalises the
    output of the convolution in front of it, whatever the layers are called.
    """
    order = []
    hooks = [m.register_forward_hook(lambda m, i, o: order.append(m) if m not in order else None)
             for m in module.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    try:
        with torch.no_grad():
            module.eval()(x.clone())
    finally:
        for hook in hooks:
            hook.remove()
    units = []
    for m in order:
        if isinstance(m, nn.Conv2d):
            units.append([m, None])
        elif units and units[-1][1] is None:
            units[-1][1] = m
    return [tuple(u) for u in units]


def _conv_signature(conv):
    return (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride)


def describe_conv(conv):
    k, s = conv.kernel_size[0], conv.stride[0]
    return f"{k}x{k} conv {conv.in_channels}->{conv.out_channels}" + (f" stride {s}" if s != 1 else "")


def match_units(candidate_units, reference_units):
    """Pair each reference unit with the candidate's unit of the same convolution shape, in order.

    Returns (pairs, problems): the problems name the convolutions that are missing or extra.
    """
    unused = list(candidate_units)
    pairs, problems = [], []
    for ref in reference_units:
        match = next((c for c in unused if _conv_signature(c[0]) == _conv_signature(ref[0])), None)
        if match is None:
            problems.append(f"no {describe_conv(ref[0])} found (the reference has one)")
            continue
        unused.remove(match)
        pairs.append((match, ref))
    problems += [f"an extra {describe_conv(c[0])} that the reference does not have" for c in unused]
    return pairs, problems


@torch.no_grad()
def randomise_batchnorm(module, generator):
    """Give every BN non-trivial statistics and affine terms, so that eval-mode outputs are sensitive
    to each layer (with BN's defaults many mistakes would change nothing)."""
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.copy_(torch.rand(n, generator=generator) + 0.5)
            m.bias.copy_(torch.randn(n, generator=generator) * 0.5)
            m.running_mean.copy_(torch.randn(n, generator=generator) * 0.2)
            m.running_var.copy_(torch.rand(n, generator=generator) + 0.5)


@torch.no_grad()
def _copy_unit(candidate, reference):
    (c_conv, c_bn), (r_conv, r_bn) = candidate, reference
    c_conv.weight.copy_(r_conv.weight)
    if c_conv.bias is not None:
        c_conv.bias.zero_()  # a bias before BN is reported on its own line; neutralise it here
    if c_bn is not None and r_bn is not None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(c_bn, name).copy_(getattr(r_bn, name))


def copy_reference_weights(candidate, reference, x):
    """Copy the reference's weights into the candidate: by name when the state_dicts agree, else by
    matching conv+BN units. Returns a list of reasons why it could not (empty on success)."""
    c_state, r_state = candidate.state_dict(), reference.state_dict()
    same_keys = list(c_state) == list(r_state)
    if same_keys and all(c_state[k].shape == r_state[k].shape for k in r_state):
        candidate.load_state_dict(r_state)
        return []
    pairs, problems = match_units(conv_bn_units(candidate, x), conv_bn_units(reference, x))
    problems += [f"the {describe_conv(c[0])} has no BN after it" for c, r in pairs
                 if c[1] is None and r[1] is not None]
    if not problems:
        for c, r in pairs:
            _copy_unit(c, r)
    return problems


def _check_biases(result, module, x):
    names = {m: n for n, m in module.named_modules()}
    biased = _biases_before_bn(module, x)
    if not biased:
        result.ok("no convolution in front of a BN has a bias")
        return
    wasted = sum(conv.bias.numel() for conv, _ in biased)
    layers = " and ".join(f"{names[c]} ({describe_conv(c)})" if names[c] else describe_conv(c)
                          for c, _ in biased)
    result.fail(f"bias before BN: {layers} ha{'s' if len(biased) == 1 else 've'} a "
                f"bias, but the BN right after subtracts the batch mean and with it any bias "
                f"({wasted:,} parameters that learn nothing). Build them with bias=False.")


def _biases_before_bn(module, x):
    return [(conv, bn) for conv, bn in conv_bn_units(module, x) if bn is not None and conv.bias is not None]


def _check_parameter_count(result, module, reference, x):
    got, expected = count_parameters(module), count_parameters(reference)
    if got == expected:
        result.ok(f"{got:,} parameters, as the reference")
        return
    difference = f"{got - expected:,} more" if got > expected else f"{expected - got:,} fewer"
    biases = sum(conv.bias.numel() for conv, _ in _biases_before_bn(module, x))
    reason = ": exactly the biases before BN" if biases and got - expected == biases else ""
    result.fail(f"wrong parameter count: expected {expected:,}, got {got:,} ({difference}{reason})")


def _compare_outputs(result, candidate, reference, x, mistakes):
    problems = copy_reference_weights(candidate, reference, x)
    if problems:
        result.fail("the layers differ from the reference's, so its weights cannot be copied to "
                    "compare outputs: " + "; ".join(problems))
        return
    with torch.no_grad():
        candidate.eval(), reference.eval()
        out, expected = candidate(x.clone()), reference(x.clone())
        if out.shape == expected.shape and torch.allclose(out, expected, atol=ATOL, rtol=RTOL):
            result.ok("with the reference's weights copied in, the outputs equal the reference's")
            return
        for mistake in mistakes:
            guess = mistake.output(reference, x.clone())
            if guess.shape == out.shape and torch.allclose(out, guess, atol=ATOL, rtol=RTOL):
                result.fail(f"{mistake.name}: {mistake.explanation}")
                return
    result.fail("with the reference's weights copied in, the outputs differ from the reference's: "
                "compare the order of the layers in forward with the reference, step by step")


def check_against_reference(result, candidate_factory, reference_factory, case, mistakes=(), name=None,
                            announce=True):
    """Run every generic check of one case; the reference is built with the same arguments.

    Never raises: anything unexpected from the learner's code becomes a FAIL line. ``announce``
    prints the case's title line first.
    """
    name = name or getattr(candidate_factory, "__name__", "your module")
    if announce:
        result.note(f"{case.title}: {case.call_text(name)} on an input of shape {case.input_shape}")
    try:
        _check_case(result, candidate_factory, reference_factory, case, mistakes, name)
    except Exception as exc:
        result.fail(f"the check could not finish: {explain_exception(exc)}")


def _check_case(result, candidate_factory, reference_factory, case, mistakes, name):
    candidate = _construct(result, candidate_factory, case, name)
    if candidate is None:
        return
    reference = reference_factory(*case.args, **case.kwargs)
    generator = torch.Generator().manual_seed(SEED)
    randomise_batchnorm(reference, generator)
    x = torch.randn(case.input_shape, generator=generator)
    reference.eval(), candidate.eval()
    out = _forward(result, candidate, x, case.call_text(name), reference)
    if out is None:
        return
    with torch.no_grad():
        expected_shape = tuple(reference(x.clone()).shape)
    if tuple(out.shape) != expected_shape:
        result.fail(f"wrong output shape: expected {expected_shape}, got {tuple(out.shape)}")
        return
    result.ok(f"builds and returns the expected shape {expected_shape}")
    _backward(result, candidate, x)
    _check_biases(result, candidate, x)
    _check_parameter_count(result, candidate, reference, x)
    _compare_outputs(result, candidate, reference, x, mistakes)


# ---------------------------------------------------------------------------------------- solutions

_SOLUTIONS = {}


def add_solution(name, source):
    """Register the reference solution of exercise ``name`` (runnable Python source)."""
    _SOLUTIONS[name] = textwrap.dedent(source).strip() + "\n"


def solution_source(name):
    if name not in _SOLUTIONS:
        raise KeyError(f"no solution named {name!r}; the exercises are {sorted(_SOLUTIONS)}")
    return _SOLUTIONS[name]


def show_solution(name):
    """Print the reference solution of an exercise (try the exercise first!)."""
    if name not in _SOLUTIONS:
        print(f"There is no exercise called {name!r}. Choose one of: {', '.join(sorted(_SOLUTIONS))}")
        return
    print(_SOLUTIONS[name], end="")


def load_solution(name, symbol):
    """Run a solution's source and return the object it defines, e.g. the class MyBasicBlock."""
    namespace = {}
    exec(compile(solution_source(name), f"<solution {name}>", "exec"), namespace)
    return namespace[symbol]


# ---------------------------------------------------------------------------------------- the basic block


def _branch(ref, x, relu_inside=True):
    out = ref.bn1(ref.conv1(x))
    return ref.bn2(ref.conv2(F.relu(out) if relu_inside else out))


def _shortcut(ref, x):
    return x if ref.downsample is None else ref.downsample(x)


BASIC_BLOCK_MISTAKES = [
    Mistake("ReLU before the addition",
            lambda r, x: F.relu(F.relu(_branch(r, x)) + _shortcut(r, x)),
            "the branch ends in a ReLU before the shortcut is added, so F(x) can only add "
            "non-negative values and never subtract. End the branch with bn2; apply the ReLU once, "
            "after the addition."),
    Mistake("no ReLU after the addition", lambda r, x: _branch(r, x) + _shortcut(r, x),
            "the block returns F(x) + x without the final ReLU. Return relu(out + identity)."),
    Mistake("the shortcut is never added", lambda r, x: F.relu(_branch(r, x)),
            "the block computes ReLU(F(x)): a plain block, not a residual one. Add x (or "
            "downsample(x)) to the branch before the final ReLU."),
    Mistake("no ReLU between the two convolutions",
            lambda r, x: F.relu(_branch(r, x, relu_inside=False) + _shortcut(r, x)),
            "bn1's output goes into conv2 without a ReLU. The branch is conv-BN-ReLU-conv-BN."),
    Mistake("ReLU before the addition only (no ReLU after it)",
            lambda r, x: F.relu(_branch(r, x)) + _shortcut(r, x),
            "the ReLU is applied to the branch and then x is added. Move it after the addition: "
            "out = relu(bn2(conv2(...)) + identity)."),
]

IDENTITY_CASE = Case("Identity Block", (64, 64), {"stride": 1}, (4, 64, 8, 8))
CONV_BLOCK_CASES = [
    Case("Conv Block (stride 2, channels doubled)", (64, 128), {"stride": 2}, (4, 64, 8, 8)),
    Case("Conv Block (channels doubled, stride 1)", (64, 128), {"stride": 1}, (4, 64, 8, 8)),
]


def check_basic_block(candidate_class, identity_only=False):
    """Check a learner's ``MyBasicBlock(in_channels, out_channels, stride=1)`` against BasicBlock.

    identity_only=True checks only the Identity Block (notebook 01, before the Conv Block is taught).
    """
    exercise = "residual_block" if identity_only else "basic_block"
    cases = [IDENTITY_CASE] + ([] if identity_only else CONV_BLOCK_CASES)
    with checking(exercise, "Checking your block against resnet_edu.blocks.BasicBlock") as result:
        for case in cases if is_buildable(result, candidate_class) else []:
            check_against_reference(result, candidate_class, BasicBlock, case, BASIC_BLOCK_MISTAKES)
    return result


add_solution("residual_block", '''
    from torch import nn


    class MyBasicBlock(nn.Module):
        """The Identity Block: the input and output shapes are equal, the shortcut is x itself."""

        def __init__(self, in_channels, out_channels, stride=1):
            super().__init__()
            self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(out_channels)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(out_channels)

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))  # no ReLU here: F(x) may be negative
            return self.relu(out + x)
''')

add_solution("basic_block", '''
    from torch import nn


    class MyBasicBlock(nn.Module):
        def __init__(self, in_channels, out_channels, stride=1):
            super().__init__()
            self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(out_channels)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(out_channels)
            self.downsample = None  # Identity Block: the shortcut is x itself
            if stride != 1 or in_channels != out_channels:  # Conv Block: project x to the new shape
                self.downsample = nn.Sequential(
                    nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                    nn.BatchNorm2d(out_channels),
                )

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))  # no ReLU here: F(x) may be negative
            return self.relu(out + identity)
''')


# ---------------------------------------------------------------------------------------- the shortcut


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


add_solution("downsample", '''
    from torch import nn


    def make_downsample(in_channels, out_channels, stride=1):
        if stride == 1 and in_channels == out_channels:
            return None  # Identity Block: the block adds x itself
        return nn.Sequential(  # Conv Block: project x to the branch's shape
            nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
            nn.BatchNorm2d(out_channels),
        )
''')


# --- Stages and bottleneck (notebooks 03, 04) ---
#
# check_stage: a learner's make_stage(block, in_channels, width, num_blocks, stride), built for
# stages of ResNet18, ResNet34 and ResNet50 and compared with the stage resnet_edu.resnet.ResNet
# builds. check_bottleneck: a learner's MyBottleneck(in_channels, width, stride=1) against
# resnet_edu.blocks.Bottleneck in the three places ResNet50 uses it. Both reuse the engine above
# and add the facts specific to their exercise (which blocks project, the in_channels
# bookkeeping, where the stride sits, the expansion).

from types import SimpleNamespace  # noqa: E402

from .blocks import Bottleneck, block_kind  # noqa: E402
from .resnet import ResNet  # noqa: E402


class StageCase(Case):
    """A Case whose arguments start with a block class: printed by name, not as <class '...'>."""

    def call_text(self, name):
        block, *rest = self.args
        return f"{name}({', '.join([block.__name__] + [repr(a) for a in rest])})"


STAGE_CASES = [
    StageCase("ResNet18's layer1: two Identity Blocks", (BasicBlock, 64, 64, 2, 1), {}, (2, 64, 8, 8)),
    StageCase("ResNet34's layer2: a Conv Block with stride 2, then three Identity Blocks",
              (BasicBlock, 64, 128, 4, 2), {}, (2, 64, 8, 8)),
    StageCase("ResNet50's layer1: a Conv Block at stride 1 (64 -> 256 channels), then two Identity Blocks",
              (Bottleneck, 64, 64, 3, 1), {}, (2, 64, 8, 8)),
]


def reference_stage(block, in_channels, width, num_blocks, stride):
    """The stage exactly as resnet_edu.resnet.ResNet builds it (its _make_stage, with
    ``in_channels`` as the running channel count and torchvision's shortcut option B)."""
    builder = SimpleNamespace(channels=in_channels)
    return ResNet._make_stage(builder, block, width, num_blocks, stride, "B")


def _build_quietly(factory, case):
    """The learner's module for one case, or None: the generic checks already report a failure."""
    try:
        module = factory(*case.args, **case.kwargs)
    except Exception:
        return None
    return module if isinstance(module, nn.Module) else None


def _facts_then_generic(result, factory, reference_factory, case, name, facts, mistakes=()):
    """One case: the exercise's own facts first, then the engine's generic checks, but only when
    every fact holds, so that the learner reads the precise reason rather than the crash it causes."""
    result.note(f"{case.title}: {case.call_text(name)} on an input of shape {case.input_shape}")
    module = _build_quietly(factory, case)
    if module is not None:
        failures_before = len(result.failures)
        try:
            facts(result, module, case)
        except Exception as exc:  # a learner's module can be anything: report, never raise
            result.fail(f"the check could not finish: {explain_exception(exc)}")
        if len(result.failures) > failures_before:
            return
    check_against_reference(result, factory, reference_factory, case, mistakes, name, announce=False)


def _describe_block(block):
    out_channels = block.conv1.out_channels * block.expansion
    stride = f", stride {block.stride}" if block.stride != 1 else ""
    return f"a {block_kind(block)} ({block.conv1.in_channels} -> {out_channels} channels{stride})"


def _check_stage_blocks(result, stage, case):
    """The facts of a stage one block at a time: count, stride, in_channels, projection."""
    block_class, in_channels, width, num_blocks, stride = case.args
    reference = reference_stage(*case.args)
    blocks = list(stage.children())
    if len(blocks) != num_blocks:
        result.fail(f"expected {num_blocks} blocks (num_blocks={num_blocks}), got {len(blocks)}: "
                    "loop for i in range(num_blocks)")
        return
    strange = [type(b).__name__ for b in blocks if not isinstance(b, block_class)]
    if strange:
        result.fail(f"a stage holds only blocks built with block(...), here {block_class.__name__}; "
                    f"found {strange}")
        return
    right = 0
    for i, (mine, theirs) in enumerate(zip(blocks, reference)):
        problems = []
        if mine.stride != theirs.stride:
            problems.append(f"stride {mine.stride} instead of {theirs.stride}: only the first block "
                            "of a stage gets the stride, the others keep the resolution (stride 1)")
        if mine.conv1.in_channels != theirs.conv1.in_channels:
            problems.append(f"built for {mine.conv1.in_channels} input channels, but "
                            f"{theirs.conv1.in_channels} flow into it: after the first block, "
                            f"in_channels becomes width * block.expansion = {width} * "
                            f"{block_class.expansion} = {width * block_class.expansion}")
        if not problems and block_kind(mine) != block_kind(theirs):
            problems.append(f"it is {_describe_block(mine)}, expected {_describe_block(theirs)}")
        if problems:
            result.fail(f"block {i}: " + "; ".join(problems))
        else:
            right += 1
    if right == num_blocks:
        kinds = ", ".join(block_kind(b) for b in blocks)
        result.ok(f"the right blocks with the right in_channels and strides: {kinds}")


def check_stage(candidate_function):
    """Check a learner's ``make_stage(block, in_channels, width, num_blocks, stride)``.

    It must return an nn.Sequential of ``num_blocks`` blocks, ``block(in_channels, width, stride)``
    first and ``block(width * block.expansion, width, 1)`` after it, as ResNet's stages are built.
    """
    name = getattr(candidate_function, "__name__", "make_stage")
    with checking("stage", "Checking your stage builder against resnet_edu's ResNet stages") as result:
        for case in STAGE_CASES if is_buildable(result, candidate_function) else []:
            _facts_then_generic(result, candidate_function, reference_stage, case, name,
                                _check_stage_blocks)
    return result


add_solution("stage", '''
    from torch import nn


    def make_stage(block, in_channels, width, num_blocks, stride):
        blocks = [block(in_channels, width, stride)]  # may change the shape: a Conv Block if so
        in_channels = width * block.expansion  # what every later block receives
        for _ in range(num_blocks - 1):
            blocks.append(block(in_channels, width, 1))  # Identity Blocks: the shape stays
        return nn.Sequential(*blocks)
''')


def _bottleneck_v1(ref, x):
    """The reference block with the stride moved from the 3x3 to the first 1x1 (the paper's v1)."""
    stride = ref.conv2.stride
    out = F.relu(ref.bn1(F.conv2d(x, ref.conv1.weight, stride=stride)))
    out = F.relu(ref.bn2(F.conv2d(out, ref.conv2.weight, padding=1)))
    return F.relu(ref.bn3(ref.conv3(out)) + _shortcut(ref, x))


def _bottleneck_branch(ref, x, relu_after_3x3=True):
    out = F.relu(ref.bn1(ref.conv1(x)))
    out = ref.bn2(ref.conv2(out))
    return ref.bn3(ref.conv3(F.relu(out) if relu_after_3x3 else out))


BOTTLENECK_MISTAKES = [
    Mistake("stride on the first 1x1 (the paper's v1)", _bottleneck_v1,
            "the 1x1 reduction carries the stride, so it skips three of every four pixels before "
            "any convolution looks at them. torchvision and resnet_edu put the stride on the 3x3 "
            "(ResNet v1.5): conv1 gets stride 1, conv2 gets the stride."),
    Mistake("ReLU before the addition",
            lambda r, x: F.relu(F.relu(_bottleneck_branch(r, x)) + _shortcut(r, x)),
            "the branch ends in a ReLU before the shortcut is added, so it can only add. End the "
            "branch with bn3; apply the ReLU once, after the addition."),
    Mistake("no ReLU after the addition", lambda r, x: _bottleneck_branch(r, x) + _shortcut(r, x),
            "the block returns F(x) + x without the final ReLU. Return relu(out + identity)."),
    Mistake("the shortcut is never added", lambda r, x: F.relu(_bottleneck_branch(r, x)),
            "the block computes ReLU(F(x)): a plain block, not a residual one. Add x (or "
            "downsample(x)) before the final ReLU."),
    Mistake("no ReLU after the 3x3",
            lambda r, x: F.relu(_bottleneck_branch(r, x, relu_after_3x3=False) + _shortcut(r, x)),
            "bn2's output goes into the expanding 1x1 without a ReLU. The branch is "
            "conv1-BN-ReLU, conv2-BN-ReLU, conv3-BN."),
]

BOTTLENECK_CASES = [
    Case("ResNet50's layer1[0]: a Conv Block at stride 1 (64 -> 256 channels)", (64, 64),
         {"stride": 1}, (2, 64, 8, 8)),
    Case("an Identity Block (256 -> 256 channels)", (256, 64), {"stride": 1}, (2, 256, 8, 8)),
    Case("ResNet50's layer2[0]: a Conv Block with stride 2 (256 -> 512 channels)", (256, 128),
         {"stride": 2}, (2, 256, 8, 8)),
]


def _check_expansion(result, candidate_class):
    expansion = getattr(candidate_class, "expansion", None)
    if expansion == Bottleneck.expansion:
        result.ok("expansion = 4: the block gives out 4 * width channels, and builders can read it")
    else:
        result.fail(f"the class attribute expansion should be {Bottleneck.expansion}, got "
                    f"{expansion!r}: ResNet's builder reads block.expansion to know that 4 * width "
                    "channels leave the block. Add `expansion = 4` to the class body.")


def _check_bottleneck_layout(result, block, case):
    """Which convolution carries the stride, and whether a projection exists where it must."""
    in_channels, width = case.args
    x = torch.zeros(case.input_shape)
    stride = case.kwargs["stride"]
    reference = Bottleneck(in_channels, width, stride)
    must_project = reference.downsample is not None
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    projects = len(convs) > 3
    if must_project and not projects:
        why = "the stride is 2" if stride != 1 else f"the channels change ({in_channels} -> {4 * width})"
        result.fail(f"missing projection: {why}, so x must pass a 1x1 convolution with the block's "
                    f"stride and a BN before the addition. Project when stride != 1 or "
                    f"in_channels != width * expansion, not only when the stride changes.")
    elif projects and not must_project:
        result.fail("a projection where none is needed: the input and output shapes are equal, so "
                    "the shortcut is x itself (downsample = None)")
    else:
        result.ok("a projection shortcut" if must_project else "the shortcut is x itself")
    if stride == 1:
        return
    try:
        units = conv_bn_units(block, x)
    except Exception:  # forward fails: the generic checks report it
        return
    threes = [conv for conv, _ in units if conv.kernel_size == (3, 3)]
    strided_reduce = [conv for conv, _ in units
                      if conv.kernel_size == (1, 1) and conv.out_channels == width and conv.stride != (1, 1)]
    if threes and threes[0].stride == (stride, stride) and not strided_reduce:
        result.ok("the stride sits on the 3x3 convolution (v1.5, as torchvision)")
    elif strided_reduce:
        v1 = BOTTLENECK_MISTAKES[0]
        result.fail(f"{v1.name}: the 3x3 convolution has stride {threes[0].stride[0] if threes else '?'}, "
                    f"expected {stride}; {v1.explanation}")
    elif threes:
        result.fail(f"the 3x3 convolution has stride {threes[0].stride[0]}, expected {stride}: the "
                    "first block of a stage halves the resolution with the stride of its 3x3")


def check_bottleneck(candidate_class):
    """Check a learner's ``MyBottleneck(in_channels, width, stride=1)`` against Bottleneck."""
    with checking("bottleneck", "Checking your bottleneck against resnet_edu.blocks.Bottleneck") as result:
        if is_buildable(result, candidate_class):
            _check_expansion(result, candidate_class)
            name = getattr(candidate_class, "__name__", "your block")
            for case in BOTTLENECK_CASES:
                _facts_then_generic(result, candidate_class, Bottleneck, case, name,
                                    _check_bottleneck_layout, BOTTLENECK_MISTAKES)
    return result


add_solution("bottleneck", '''
    from torch import nn


    class MyBottleneck(nn.Module):
        expansion = 4  # the block gives out 4 * width channels

        def __init__(self, in_channels, width, stride=1):
            super().__init__()
            out_channels = width * self.expansion
            self.conv1 = nn.Conv2d(in_channels, width, kernel_size=1, bias=False)  # reduce
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, kernel_size=3, stride=stride, padding=1,
                                   bias=False)  # stride on the 3x3: v1.5
            self.bn2 = nn.BatchNorm2d(width)
            self.conv3 = nn.Conv2d(width, out_channels, kernel_size=1, bias=False)  # expand
            self.bn3 = nn.BatchNorm2d(out_channels)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = None  # Identity Block
            if stride != 1 or in_channels != out_channels:  # Conv Block, also at stride 1
                self.downsample = nn.Sequential(
                    nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                    nn.BatchNorm2d(out_channels),
                )

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            return self.relu(out + identity)
''')
