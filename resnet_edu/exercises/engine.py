"""The checking engine of the exercises, and ``show_solution``, which prints a reference solution.

A checker runs a learner's module against a reference and prints a short report (one ``ok`` or
``FAIL`` line per fact it checked, in plain words); it returns a :class:`CheckResult` that is
truthy when everything passed. It never raises on a wrong answer, so a notebook still runs top to
bottom while the exercise cell is unfinished. ``show_solution(name)`` prints the file
``solutions/<name>.py``, which stays out of sight until asked for.

Adding a checker takes three steps:

1. describe the cases: ``Case(title, args, kwargs, input_shape)``, e.g. an Identity Block and a
   stride-2 Conv Block;
2. name the known mistakes as functions of the *reference* module and the input, each computing
   what the reference would output if it made that mistake (:class:`Mistake`);
3. call :func:`check_against_reference` for each case inside
   ``with checking(exercise, title) as result:``, and write the reference solution to
   ``solutions/<exercise>.py``.

:func:`check_against_reference` builds the learner's module, runs it, compares the output shape,
runs backward, looks for convolutions with a bias in front of BN and for parameters that never
get a gradient, counts the parameters, then copies the reference's weights into the learner's
module (matching layers by name, or else by the order they run in and their shapes, so other
names work) and compares outputs; where they differ it names the known mistake whose output
matches.
"""

import contextlib
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..measure import count_parameters

SEED = 0
ATOL, RTOL = 1e-5, 1e-4  # float32 rounding; a real mistake changes outputs by far more
SOLUTIONS = Path(__file__).parent / "solutions"  # one file per exercise, named after it

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


def _is_shape_mismatch(exc):
    return "must match the size of tensor" in str(exc)


def _has_projection(module):
    return any(isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) for m in module.modules())


def _forward(result, module, x, call, reference):
    """Run forward on a copy of x; None (and a FAIL line) if it fails or returns a non-tensor."""
    inp = x.clone()
    try:
        out = module(inp)
    except Exception as exc:
        if _is_shape_mismatch(exc) and not _has_projection(reference):
            result.fail(f"shape mismatch in the addition: forward of {call} on an input of shape "
                        f"{tuple(x.shape)} raised {type(exc).__name__}: {str(exc).strip().splitlines()[0]}. "
                        "In plain words: this block keeps its shape, so F(x) must come out with the "
                        "shape of x, but a layer of the branch changed it (a 3x3 convolution needs "
                        "padding=1 to keep the size; check too which layer takes the stride)")
            return None
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
        result.ok("backward runs, and forward uses every parameter")
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
    layers = " and ".join(f"{_layer_name(names[c])} ({describe_conv(c)})" for c, _ in biased)
    result.fail(f"bias before BN: {layers} ha{'s' if len(biased) == 1 else 've'} a "
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
    if isinstance(module, (list, tuple)):  # a builder's most common slip; the engine's advice is for classes
        result.fail(f"{case.call_text(name)} returned a {type(module).__name__} of blocks, expected one "
                    "module: return nn.Sequential(*blocks), which runs the blocks in order")
        return
    if isinstance(module, nn.Module):
        failures_before = len(result.failures)
        try:
            facts(result, module, case)
        except Exception as exc:  # a learner's module can be anything: report, never raise
            result.fail(f"the check could not finish: {explain_exception(exc)}")
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
