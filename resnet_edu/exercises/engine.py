"""The checking engine of the exercises, and ``show_solution``, which prints a reference solution.

A checker runs a learner's code against a reference and returns a :class:`CheckResult`: a list of
:class:`Check` values, each a status (``ok`` or ``FAIL``), the stable id of the mistake it found
(``"bias-before-bn"``; None for ``ok``) and the words for the learner. The result prints once, as a
report, when the check ends; ``result.mistakes`` lists the ids of the failed checks and
``bool(result)`` is True when everything passed: tests read those, never the words. A checker never
raises on a wrong answer, so a notebook still runs top to bottom while the exercise is unfinished.
``show_solution(name)`` prints the file ``solutions/<name>.py``, which stays out of sight until asked for.

Every checker module lists the mistakes it can report in ``MISTAKE_IDS`` (id -> one line for a
teacher), built from the lists here (:data:`REFERENCE_MISTAKES` for the generic checks) and its own.

Adding a checker takes three steps:

1. describe the cases: ``Case(title, args, kwargs, input_shape)``, e.g. an Identity Block and a
   stride-2 Conv Block;
2. name the known mistakes as :class:`Mistake` values: an id, and a function of the *reference*
   module and the input computing what the reference would output if it made that mistake;
3. call :func:`check_against_reference` for each case inside
   ``with checking(exercise, title, MISTAKE_IDS) as result:``, and write the reference solution to
   ``solutions/<exercise>.py``.

:func:`check_against_reference` builds the learner's module, runs it, compares the output shape,
runs backward, looks for convolutions with a bias in front of BN and for parameters that never
get a gradient, counts the parameters, then copies the reference's weights into the learner's
module (matching layers by name, or else by what they read and their shapes, so other names and
orders work) and compares outputs; where they differ it names the known mistake whose output
matches (:func:`matching_mistake`).
"""

import contextlib
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn

from ..measure import count_parameters

SEED = 0
# The one tolerance of every comparison of outputs: float32 rounding of an equivalent computation
# stays far below it, and a real mistake changes outputs by far more.
ATOL, RTOL = 1e-5, 1e-4
SOLUTIONS = Path(__file__).parent / "solutions"  # one file per exercise, named after it

# ---------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Check:
    """One line of a report: ``status`` "ok", "FAIL" or "note" (a heading, not a check); ``mistake``
    the stable id of what a FAIL found; ``text`` the words for the learner."""

    status: str
    text: str
    mistake: Optional[str] = None

    def format(self):
        if self.status == "note":
            return self.text
        indent = "\n" + " " * 8
        return f"  {self.status:<5} " + indent.join(textwrap.wrap(self.text, 92))


@dataclass
class CheckResult:
    """The checks of one exercise. ``passed`` (and ``bool(result)``) is True when at least one check
    ran and none failed; ``mistakes`` holds the ids of the failed checks, in the order found."""

    exercise: str
    title: str = ""
    known: dict = field(default_factory=dict)  # the ids this checker may report (its MISTAKE_IDS)
    lines: list = field(default_factory=list)

    def ok(self, text):
        self.lines.append(Check("ok", text))

    def fail(self, mistake, text):
        self.lines.append(Check("FAIL", text, mistake))

    def note(self, text):
        self.lines.append(Check("note", text))

    @property
    def checks(self):
        return [line for line in self.lines if line.status != "note"]

    @property
    def failures(self):
        return [line.text for line in self.lines if line.status == "FAIL"]

    @property
    def mistakes(self):
        return [line.mistake for line in self.lines if line.status == "FAIL"]

    @property
    def passed(self):
        return bool(self.checks) and not self.failures

    def __bool__(self):
        return self.passed

    def report(self):
        """The whole report as text: the title, one line per check, the verdict."""
        if self.passed:
            verdict = f"All {len(self.checks)} checks passed."
        else:
            verdict = (f"{len(self.failures)} problem(s). Fix the first FAIL line and run the check again; "
                       f'show_solution("{self.exercise}") prints a solution.')
        return "\n".join([self.title, *(line.format() for line in self.lines), verdict])

    def __repr__(self):
        verdict = "passed" if self.passed else f"{len(self.failures)} problem(s)"
        return f"<{self.exercise} check: {verdict}>"


@contextlib.contextmanager
def checking(exercise, title, known):
    """Yield a CheckResult, seeded without touching the caller's RNG; print its report once, at the end."""
    result = CheckResult(exercise, title, known)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        yield result
    print(result.report())


def catalogue(*parts):
    """One module's MISTAKE_IDS from dicts {id: description} and lists of :class:`Mistake`."""
    merged = {}
    for part in parts:
        merged.update(part if isinstance(part, dict) else {m.id: m.name for m in part})
    return merged


# ---------------------------------------------------------------------------------------- the learner's code

REFERENCE_MISTAKES = {  # what the generic checks of a module against its reference can report
    "instance-not-class": "a built module was passed instead of its class",
    "not-callable": "the answer is not a class or a function",
    "result-not-function": "what the learner's function returns was passed instead of the function",
    "constructor-raises": "building the module raised an exception",
    "not-a-module": "the constructor returned something other than an nn.Module",
    "returned-a-list": "a builder returned a list of blocks instead of one module",
    "forward-raises": "forward raised an exception",
    "shape-mismatch-in-addition": "a layer of the branch changed the shape of a block that keeps it",
    "missing-projection": "the shortcut does not project x where the shape changes",
    "not-a-tensor": "forward returned something other than a tensor",
    "modifies-input": "forward changed its input in place",
    "backward-raises": "backward through the module raised an exception",
    "unused-parameters": "some parameters get no gradient: forward never uses them",
    "bias-before-bn": "a convolution in front of a BN has a bias",
    "wrong-parameter-count": "the parameter count differs from the reference's",
    "wrong-output-shape": "the output's shape differs from the reference's",
    "layers-differ": "convolutions are missing or extra, so the reference's weights cannot be copied",
    "outputs-differ": "with the reference's weights the outputs differ, in no known way",
    "check-could-not-finish": "the learner's code broke the check itself",
}

FAILED = object()  # what call_learner returns when the learner's code raised


def call_learner(result, what, function, *args, mistake, explain=None, **kwargs):
    """``function(*args, **kwargs)``, or FAILED with a FAIL line "<what> raised <in words>".

    The one way a checker calls a learner's code: whatever it raises is reported, never raised.
    ``mistake`` is the id of that FAIL line, or a function of the exception that picks it;
    ``explain`` puts the exception in words (default :func:`explain_exception`).
    """
    try:
        return function(*args, **kwargs)
    except Exception as exc:  # the learner's code may fail in any way: report, never raise
        mistake_id = mistake(exc) if callable(mistake) else mistake
        result.fail(mistake_id, f"{what} raised {(explain or explain_exception)(exc)}")
        return FAILED


@contextlib.contextmanager
def reporting_crashes(result, explain=None):
    """Anything that a learner's answer makes a check raise becomes the FAIL line check-could-not-finish."""
    try:
        yield
    except Exception as exc:
        result.fail("check-could-not-finish", f"the check could not finish: {(explain or explain_exception)(exc)}")


def same_values(out, expected, atol=ATOL, rtol=RTOL):
    """Whether a learner's tensor equals the expected one: same shape, values within the tolerance."""
    if not (isinstance(out, torch.Tensor) and out.shape == expected.shape and out.device == expected.device):
        return False
    if not expected.is_floating_point():  # pixels, counts, labels: exactly
        return torch.equal(out, expected)
    return torch.allclose(out.to(expected.dtype), expected, atol=atol, rtol=rtol)


def matching_mistake(out, mistakes, output_with):
    """The first known mistake whose output, ``output_with(mistake)``, equals ``out``; else None.

    The one way a checker names a mistake from an output: each mistake computes what the reference
    would give if it made that mistake.
    """
    for mistake in mistakes:
        try:
            expected = output_with(mistake)
        except Exception:  # noqa: BLE001 - a mistake that cannot happen in this model (e.g. shapes that do not fit)
            continue
        if same_values(out, expected):
            return mistake
    return None


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


@dataclass(frozen=True)
class Mistake:
    """A known mistake: its stable ``id``, its ``name`` (one line), what output it gives
    (``output``: for the engine's checks, a function of the reference module and the input), and
    what the learner should look at (``explanation``)."""

    id: str
    name: str
    output: Callable
    explanation: str

    def fail(self, result, prefix=""):
        result.fail(self.id, f"{prefix}{self.name}: {self.explanation}")


def exception_line(exc):
    """The exception's type and the first line of its message: "RuntimeError: ..."."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message}"


def explain_exception(exc):
    """Turn an exception from the learner's code into plain words and a next step."""
    raw = exception_line(exc)
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
        ("requires grad is being used in an in-place operation", "an in-place operation (a method whose name "
         "ends in _, +=, or an assignment into part of a tensor) changed a tensor that autograd must keep as it "
         "was: the input x, a view of it, or a parameter. Leave that tensor as it is and compute a new one."),
    ]
    for needle, hint in hints:
        if needle in raw:
            return f"{raw.rstrip('.')}. In plain words: {hint}"
    return raw


def one_cause_for_shape_mismatch(mistake, otherwise, plain_words):
    """(mistake_of, explain) for ``call_learner`` where a shape mismatch in an elementwise operation
    has one likely cause in an exercise: it is named ``mistake`` and explained in ``plain_words``;
    any other exception is ``otherwise``, explained as :func:`explain_exception` does."""
    def mistake_of(exc):
        return mistake if "must match the size of tensor" in str(exc) else otherwise

    def explain(exc):
        if mistake_of(exc) == otherwise:
            return explain_exception(exc)
        first_line = str(exc).strip().splitlines()[0]
        return f"{type(exc).__name__}: {first_line.rstrip('.')}. In plain words: {plain_words}"

    return mistake_of, explain


def is_buildable(result, candidate):
    """False (and a FAIL line) when the learner passed a built module instead of its class."""
    if isinstance(candidate, nn.Module):
        name = type(candidate).__name__
        result.fail("instance-not-class", f"expected the class {name} itself, got an instance of it: "
                    f"pass {name}, not {name}(...)")
        return False
    if not callable(candidate):
        result.fail("not-callable", f"expected a class or function, got {type(candidate).__name__}")
        return False
    return True


def is_the_function(result, candidate, name):
    """False (and a FAIL line) when the learner passed what the function ``name`` returns, a module
    or None, instead of the function: is_buildable's advice would name the returned module's class."""
    if candidate is not None and not isinstance(candidate, nn.Module):
        return is_buildable(result, candidate)
    got = "None" if candidate is None else f"an instance of {type(candidate).__name__}"
    result.fail("result-not-function", f"expected the function {name} itself, got {got}: that is what a call "
                "of it returns. Pass the function without calling it, and the checker calls it with each "
                "case's arguments")
    return False


def _construct(result, factory, case, name):
    """Build the learner's module for one case; None (and a FAIL line) if that fails."""
    call = case.call_text(name)
    module = call_learner(result, call, factory, *case.args, **case.kwargs, mistake="constructor-raises")
    if module is FAILED:
        return None
    if not isinstance(module, nn.Module):
        result.fail("not-a-module", f"{call} returned {type(module).__name__}, expected an nn.Module "
                    "(subclass nn.Module and call super().__init__())")
        return None
    return module


def _is_shape_mismatch(exc):
    return "must match the size of tensor" in str(exc)


def _has_projection(module):
    return any(isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) for m in module.modules())


def _forward_failure(exc, module, reference, call, x):
    """(mistake id, words) for an exception raised by the learner's forward."""
    if _is_shape_mismatch(exc) and not _has_projection(reference):
        return ("shape-mismatch-in-addition",
                f"shape mismatch in the addition: forward of {call} on an input of shape "
                f"{tuple(x.shape)} raised {type(exc).__name__}: {str(exc).strip().splitlines()[0]}. "
                "In plain words: this block keeps its shape, so F(x) must come out with the "
                "shape of x, but a layer of the branch changed it (a 3x3 convolution needs "
                "padding=1 to keep the size; check too which layer takes the stride)")
    raised = f"forward of {call} on an input of shape {tuple(x.shape)} raised {explain_exception(exc)}"
    if _has_projection(reference) and not _has_projection(module):
        return "missing-projection", f"missing projection: {raised}"
    return "forward-raises", raised


def _forward(result, module, x, call, reference):
    """Run forward on a copy of x; None (and a FAIL line) if it fails or returns a non-tensor."""
    inp = x.clone()
    try:
        out = module(inp)
    except Exception as exc:  # the learner's forward: report, never raise
        result.fail(*_forward_failure(exc, module, reference, call, x))
        return None
    if not isinstance(out, torch.Tensor):
        result.fail("not-a-tensor", f"forward of {call} returned {type(out).__name__}, expected a tensor: "
                    "end forward with return out")
        return None
    if not torch.equal(inp, x):
        result.fail("modifies-input", "forward changed its input x in place (an in-place ReLU or += on x): "
                    "the layer before the block may need x for its backward pass; work on a new tensor instead")
    return out


def _backward(result, module, x):
    """Train-mode forward and backward: catches in-place errors and layers that forward never uses."""
    module.train()
    trainable = any(p.requires_grad for p in module.parameters())
    inp = x.clone() if trainable else x.clone().requires_grad_().clone()  # else backward goes to x alone
    if call_learner(result, "backward", lambda: module(inp).sum().backward(),
                    mistake="backward-raises") is FAILED:
        return
    unused = [name for name, p in module.named_parameters() if p.grad is None]
    if unused:
        result.fail("unused-parameters", f"these parameters get no gradient, so forward never uses them: {unused}")
    elif not trainable:
        result.ok("backward runs (the module has no parameters to train)")
    else:
        result.ok("backward runs, and forward uses every parameter")
    module.zero_grad(set_to_none=True)


@dataclass
class Unit:
    """A convolution, the BN that follows it (or None), and whether it reads the module's input x."""

    conv: nn.Conv2d
    bn: Optional[nn.BatchNorm2d] = None
    reads_input: bool = False

    @property
    def signature(self):
        conv = self.conv
        return (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride)


def conv_bn_units(module, x):
    """[Unit] in the order forward runs the convolutions.

    A BN belongs to the convolution that ran just before it: in a block every BN normalises the
    output of the convolution in front of it, whatever the layers are called. A unit "reads the
    input" when its convolution is applied to x itself, as a block's first convolution and its
    projection are.
    """
    inp, order, reads = x.clone(), [], set()

    def record(m, inputs, output):  # a convolution once, a BN at every call (one BN may be shared)
        if m not in order or isinstance(m, nn.BatchNorm2d):
            order.append(m)
        if inputs and inputs[0] is inp:
            reads.add(m)

    hooks = [m.register_forward_hook(record) for m in module.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    try:
        with torch.no_grad():
            module.eval()(inp)
    finally:
        for hook in hooks:
            hook.remove()
    units = []
    for m in order:
        if isinstance(m, nn.Conv2d):
            units.append(Unit(m, reads_input=m in reads))
        elif units and units[-1].bn is None:
            units[-1].bn = m
    return units


def describe_conv(conv):
    k, s = conv.kernel_size[0], conv.stride[0]
    return f"{k}x{k} conv {conv.in_channels}->{conv.out_channels}" + (f" stride {s}" if s != 1 else "")


def _pair(references, unused, key):
    """Pair each reference unit with the first unused candidate unit of the same ``key``, in order."""
    pairs, unmatched = [], []
    for ref in references:
        match = next((c for c in unused if key(c) == key(ref)), None)
        if match is None:
            unmatched.append(ref)
        else:
            unused.remove(match)
            pairs.append((match, ref))
    return pairs, unmatched


def match_units(candidate_units, reference_units):
    """Pair each reference unit with the candidate's unit that has its convolution's shape and reads
    what it reads (x itself, or the branch), whatever the names and the order of the layers.

    Shape alone cannot tell ResNet50's expanding 1x1 from its projection (both 1x1 64->256 in
    layer1[0]); what they read can. A unit left over is paired by its shape alone, so that a layer
    reading the wrong tensor is still compared (and its mistake named). Returns (pairs, problems):
    the problems name the convolutions that are missing or extra.
    """
    unused = list(candidate_units)
    pairs, left = _pair(reference_units, unused, key=lambda u: (u.signature, u.reads_input))
    more_pairs, missing = _pair(left, unused, key=lambda u: u.signature)
    problems = [f"no {describe_conv(ref.conv)} found (the reference has one)" for ref in missing]
    problems += [f"an extra {describe_conv(c.conv)} that the reference does not have" for c in unused]
    return pairs + more_pairs, problems


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
    candidate.conv.weight.copy_(reference.conv.weight)
    if candidate.conv.bias is not None:
        candidate.conv.bias.zero_()  # a bias before BN is reported on its own line; neutralise it here
    if candidate.bn is not None and reference.bn is not None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(candidate.bn, name).copy_(getattr(reference.bn, name))


def copy_reference_weights(candidate, reference, x):
    """Copy the reference's weights into the candidate: by name when the state_dicts agree, else by
    matching conv+BN units. Returns a list of reasons why it could not (empty on success)."""
    units = conv_bn_units(candidate, x)
    bns = [unit.bn for unit in units if unit.bn is not None]
    if len({id(bn) for bn in bns}) < len(bns):  # one BN object after two convolutions, under one name or two
        return ["one BN module normalises the outputs of two convolutions: each convolution needs a BN of "
                "its own, whose statistics and scale belong to that layer"]
    c_state, r_state = candidate.state_dict(), reference.state_dict()
    same_keys = list(c_state) == list(r_state)
    if same_keys and all(c_state[k].shape == r_state[k].shape for k in r_state):
        candidate.load_state_dict(r_state)
        return []
    pairs, problems = match_units(units, conv_bn_units(reference, x))
    problems += [f"the {describe_conv(c.conv)} has no BN after it" for c, r in pairs
                 if c.bn is None and r.bn is not None]
    problems += [f"the BN after the {describe_conv(c.conv)} has no weight and bias (affine=False); "
                 "the reference's BNs have both" for c, r in pairs
                 if c.bn is not None and r.bn is not None and c.bn.weight is None and r.bn.weight is not None]
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
    wasted = sum(conv.bias.numel() for conv in biased)
    layers = " and ".join(f"{_layer_name(names[c])} ({describe_conv(c)})" for c in biased)
    result.fail("bias-before-bn", f"bias before BN: {layers} ha{'s' if len(biased) == 1 else 've'} a "
                f"bias, but the BN right after subtracts the batch mean and with it any bias "
                f"({wasted:,} parameters that learn nothing). Build them with bias=False.")


def _layer_name(name):
    """How a learner recognises a layer: its attribute name, or its place in an nn.Sequential."""
    if not name:
        return "your module itself"
    last = name.rsplit(".", 1)[-1]
    if last.isdigit():
        owner = name.rsplit(".", 1)[0] if "." in name else "your nn.Sequential"
        return f"layer {last} of {owner}"
    return name


def _biases_before_bn(module, x):
    return [u.conv for u in conv_bn_units(module, x) if u.bn is not None and u.conv.bias is not None]


def _check_parameter_count(result, module, reference, x):
    got, expected = count_parameters(module), count_parameters(reference)
    if got == expected:
        result.ok(f"{got:,} parameters, as the reference")
        return
    difference = f"{got - expected:,} more" if got > expected else f"{expected - got:,} fewer"
    biases = sum(conv.bias.numel() for conv in _biases_before_bn(module, x))
    reason = ": exactly the biases before BN" if biases and got - expected == biases else ""
    result.fail("wrong-parameter-count", f"wrong parameter count: expected {expected:,}, got {got:,} "
                f"({difference}{reason})")


def _compare_outputs(result, candidate, reference, x, mistakes):
    problems = copy_reference_weights(candidate, reference, x)
    if problems:
        result.fail("layers-differ", "the layers differ from the reference's, so its weights cannot be "
                    "copied to compare outputs: " + "; ".join(problems))
        return
    with torch.no_grad():
        candidate.eval(), reference.eval()
        out = candidate(x.clone())
        if same_values(out, reference(x.clone())):
            result.ok("with the reference's weights copied in, the outputs equal the reference's")
            return
        mistake = matching_mistake(out, mistakes, lambda m: m.output(reference, x.clone()))
    if mistake is not None:
        mistake.fail(result)
        return
    result.fail("outputs-differ", "with the reference's weights copied in, the outputs differ from the "
                "reference's: compare the order of the layers in forward with the reference, step by step")


def check_against_reference(result, candidate_factory, reference_factory, case, mistakes=(), name=None,
                            announce=True):
    """Run every generic check of one case; the reference is built with the same arguments.

    Never raises: anything unexpected from the learner's code becomes a FAIL line. ``announce``
    adds the case's title line first.
    """
    name = name or getattr(candidate_factory, "__name__", "your module")
    if announce:
        result.note(f"{case.title}: {case.call_text(name)} on an input of shape {case.input_shape}")
    with reporting_crashes(result):
        _check_case(result, candidate_factory, reference_factory, case, mistakes, name)


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
        result.fail("wrong-output-shape", f"wrong output shape: expected {expected_shape}, got {tuple(out.shape)}")
        return
    result.ok(f"builds and returns the expected shape {expected_shape}")
    _backward(result, candidate, x)
    _check_biases(result, candidate, x)
    _check_parameter_count(result, candidate, reference, x)
    _compare_outputs(result, candidate, reference, x, mistakes)


def _build_quietly(factory, case):
    """What the learner's factory returns for one case, or None if it raises: the generic checks
    report that failure."""
    try:
        return factory(*case.args, **case.kwargs)
    except Exception:
        return None


def check_facts_then_reference(result, factory, reference_factory, case, name, facts, mistakes=()):
    """One case: the exercise's own ``facts(result, module, case)`` first, then the generic checks,
    but only when every fact holds, so that the learner reads the precise reason rather than the
    crash it causes."""
    result.note(f"{case.title}: {case.call_text(name)} on an input of shape {case.input_shape}")
    module = _build_quietly(factory, case)
    if isinstance(module, (list, tuple, nn.ModuleList)):  # a builder's common slip; the engine's advice is for classes
        result.fail("returned-a-list", f"{case.call_text(name)} returned a {type(module).__name__} of blocks, "
                    "expected one module that runs them: return nn.Sequential(*blocks), which runs the blocks "
                    "in order (an nn.ModuleList only holds them and has no forward)")
        return
    if isinstance(module, nn.Module):
        failures_before = len(result.failures)
        with reporting_crashes(result):
            facts(result, module, case)
        if len(result.failures) > failures_before:
            return
    check_against_reference(result, factory, reference_factory, case, mistakes, name, announce=False)


# ---------------------------------------------------------------------------------------- solutions


def solution_names():
    """The exercises that have a reference solution: the files in ``solutions/``."""
    return sorted(path.stem for path in SOLUTIONS.glob("*.py") if path.stem != "__init__")


def solution_source(name):
    """The text of exercise ``name``'s solution file; a KeyError listing the exercises if there is none."""
    if name not in solution_names():
        raise KeyError(f"no solution named {name!r}; the exercises are {solution_names()}")
    return (SOLUTIONS / f"{name}.py").read_text(encoding="utf-8")


def show_solution(name):
    """Print the reference solution of an exercise (try the exercise first!)."""
    try:
        print(solution_source(name), end="")
    except KeyError:
        print(f"There is no exercise called {name!r}. Choose one of: {', '.join(solution_names())}")
