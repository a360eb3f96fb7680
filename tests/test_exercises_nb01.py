"""Notebook 01's additions: the pre-activation block of "Identity Mappings in Deep Residual Networks"
(``PreActBasicBlock``), the predict-then-check questions of exercise 2 with their worked answers, what
the notebook's text says of its measurements (re-run here with the notebook's own functions), and what
the committed notebook shows where no kernel runs (no answer given away, a figure for the slider)."""

import ast
import functools
import json
import re
import runpy
import statistics
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from _checker_results import assert_passes, mistakes

from resnet_edu import blocks
from resnet_edu.blocks import BasicBlock, PreActBasicBlock, ZeroPadShortcut, block_kind
from resnet_edu.exercises.engine import solution_names
from resnet_edu.exercises.residual_block import (WIDTH_QUESTIONS, ZERO_INIT_QUESTIONS, check_width_prediction,
                                                 check_zero_init_predictions, make_stack, stack_gradient_norms,
                                                 plain_growth_per_block, tensors_with_gradient, zero_init_stack)
from resnet_edu.exercises import check_basic_block
from resnet_edu.measure import count_parameters

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "01_residual_block.ipynb"


def code_cells():
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    return [cell for cell in cells if cell["cell_type"] == "code"]


def stored_text(cell):
    return "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                   for o in cell.get("outputs", []))


# ---------------------------------------------------------------- PreActBasicBlock: the block itself


def branch(block, x):
    """F(x) of a pre-activation block, written out: BN-ReLU-conv-BN-ReLU-conv."""
    return block.conv2(F.relu(block.bn2(block.conv1(F.relu(block.bn1(x))))))


def test_the_pre_activation_block_is_exported_from_blocks():
    assert "PreActBasicBlock" in blocks.__all__


def test_identity_case_keeps_the_shape_and_has_basic_blocks_parameters():
    block = PreActBasicBlock(64, 64)
    x = torch.randn(2, 64, 8, 8)
    assert block(x).shape == (2, 64, 8, 8)
    assert block.downsample is None and block_kind(block) == "Identity Block"
    assert count_parameters(block) == count_parameters(BasicBlock(64, 64)) == 73_984
    assert block.conv1.bias is None and block.conv2.bias is None


def test_forward_runs_bn_relu_conv_bn_relu_conv_then_adds_x_with_nothing_after():
    block = PreActBasicBlock(16, 16)
    order = []
    for name, module in block.named_children():
        module.register_forward_hook(lambda m, i, o, name=name: order.append(name))
    x = torch.randn(4, 16, 8, 8)
    out = block(x)
    assert order == ["bn1", "relu", "conv1", "bn2", "relu", "conv2"]
    torch.testing.assert_close(out, branch(block, x) + x)  # no ReLU after the addition
    assert (out < 0).any()  # which a final ReLU would forbid


def test_forward_leaves_its_input_unchanged():
    block = PreActBasicBlock(16, 16)
    x = torch.randn(4, 16, 8, 8)
    before = x.clone()
    block(x).sum().backward()
    assert torch.equal(x, before)


def test_every_parameter_and_the_input_get_a_gradient():
    block = PreActBasicBlock(16, 32, stride=2)
    x = torch.randn(4, 16, 8, 8, requires_grad=True)
    block(x).pow(2).mean().backward()
    assert all(p.grad is not None and p.grad.any() for p in block.parameters())
    assert x.grad.any()


def test_conv_block_projects_the_pre_activated_input_with_a_1x1_convolution_alone():
    block = PreActBasicBlock(64, 128, stride=2)
    assert isinstance(block.downsample, nn.Conv2d) and block_kind(block) == "Conv Block"
    assert block.downsample.kernel_size == (1, 1) and block.downsample.stride == (2, 2)
    assert block.downsample.bias is None
    assert block.bn1.num_features == 64 and block.bn2.num_features == 128
    x = torch.randn(2, 64, 8, 8)
    out = block(x)
    assert out.shape == (2, 128, 4, 4)
    torch.testing.assert_close(out, branch(block, x) + block.downsample(F.relu(block.bn1(x))))
    # two BN of 64 and 128 channels, 3x3 convolutions 64->128 and 128->128, the 1x1 projection
    assert count_parameters(block) == 2 * 64 + 2 * 128 + 64 * 128 * 9 + 128 * 128 * 9 + 64 * 128


@pytest.mark.parametrize("option,stride,in_channels,expected", [
    ("A", 2, 64, ZeroPadShortcut), ("C", 1, 64, nn.Conv2d), ("B", 1, 64, type(None)), ("B", 1, 32, nn.Conv2d),
])
def test_the_shortcut_options_of_basic_block(option, stride, in_channels, expected):
    block = PreActBasicBlock(in_channels, 64, stride=stride, shortcut=option)
    assert isinstance(block.downsample, expected)
    assert block(torch.randn(2, in_channels, 8, 8)).shape == (2, 64, 8 // stride, 8 // stride)


def test_wrong_constructor_arguments_raise_as_for_basic_block():
    with pytest.raises(ValueError, match="shortcut must be one of"):
        PreActBasicBlock(64, 64, shortcut="D")
    with pytest.raises(ValueError, match="cannot shrink its channels"):
        PreActBasicBlock(128, 64)


def test_zero_init_residual_zeroes_the_last_convolution_and_makes_the_block_the_identity():
    block = PreActBasicBlock(16, 16)
    block.zero_init_residual()
    assert not block.conv2.weight.any()
    x = torch.randn(4, 16, 8, 8)  # any signs: nothing after the addition cuts the negative values
    assert torch.equal(block(x), x)


# ---------------------------------------------------------------- PreActBasicBlock: a stack of them


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_a_zeroed_stack_is_the_identity_forwards_and_backwards(mode):
    torch.manual_seed(0)
    stack = nn.Sequential(*[PreActBasicBlock(16, 16) for _ in range(8)])
    for block in stack:
        block.zero_init_residual()
    getattr(stack, mode)()
    x = torch.randn(8, 16, 8, 8, requires_grad=True)
    out = stack(x)
    out.retain_grad()
    F.mse_loss(out, torch.randn_like(out)).backward()
    assert torch.equal(out, x)
    assert torch.equal(x.grad, out.grad)  # the "1" of the paper's equation 5, alone


def test_a_zeroed_basic_block_stack_passes_the_gradient_only_where_x_is_positive():
    torch.manual_seed(0)
    stack = nn.Sequential(*[BasicBlock(16, 16) for _ in range(8)])
    for block in stack:
        block.zero_init_residual()
    x = torch.randn(8, 16, 8, 8, requires_grad=True)
    out = stack(x)
    out.retain_grad()
    F.mse_loss(out, torch.randn_like(out)).backward()
    assert torch.equal(out, F.relu(x))
    assert torch.equal(x.grad, torch.where(x > 0, out.grad, 0.0))  # the final ReLUs cut the rest
    assert not torch.equal(x.grad, out.grad)


def test_a_stack_outputs_its_input_plus_the_sum_of_its_branches():
    """The paper's equation 4, x_L = x_0 + sum of F(x_i): no block changes what the shortcut carries."""
    torch.manual_seed(0)
    stack = make_stack("preact", 6)
    branches = []
    for block in stack:
        block.conv2.register_forward_hook(lambda m, i, o: branches.append(o))
    x = torch.randn(8, 16, 8, 8)
    with torch.no_grad():
        out = stack(x)
    torch.testing.assert_close(out, x + sum(branches))


# ---------------------------------------------------------------- the gradient experiment: package and notebook agree


def is_definition(node):
    """An import, a def, a class, or a constant: ``NAME = ...`` in capitals, or ``KINDS["preact"] = ...``."""
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)):
        return True
    if not isinstance(node, ast.Assign):
        return False
    names = [target.value if isinstance(target, ast.Subscript) else target for target in node.targets]
    return all(isinstance(name, ast.Name) and name.id.isupper() for name in names)


@functools.lru_cache(maxsize=1)
def notebook_definitions():
    """The notebook's imports, functions, classes and constants before its exercises, run without the
    measurements and figures: the notebook's own PlainBlock, make_stack, gradient_norms, first_and_last,
    at_the_ends, open_shortcut_share ... (cell 1 installs the package in Colab and is not Python)."""
    nodes = []
    for cell in json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and source.startswith("## Exercises"):
            break
        if cell["cell_type"] == "code":
            try:
                nodes += [node for node in ast.parse(source).body if is_definition(node)]
            except SyntaxError:  # cell 1's "!pip install"
                continue
    namespace = {}
    exec(compile(ast.Module(body=nodes, type_ignores=[]), str(NOTEBOOK), "exec"), namespace)
    return namespace


def test_the_notebook_defines_the_stacks_of_sections_5_and_6():
    assert set(notebook_definitions()["KINDS"]) == {"plain", "plain_no_bn", "residual", "preact"}


@pytest.mark.parametrize("kind", ["plain", "residual", "preact"])
def test_the_checkers_measure_what_the_notebook_measures(kind):
    assert notebook_definitions()["gradient_norms"](kind, 5, seed=1) == stack_gradient_norms(kind, 5, seed=1)


def test_the_stack_without_bn_is_the_plain_stack_minus_its_bns():
    block = notebook_definitions()["KINDS"]["plain_no_bn"](16, 16)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in block.modules())
    x = torch.randn(2, 16, 8, 8)
    torch.testing.assert_close(block(x), F.relu(block.conv2(F.relu(block.conv1(x)))))


# ---------------------------------------------------------------- what the notebook's text says of its measurements


@functools.lru_cache(maxsize=None)
def first_and_last(kind):
    """The notebook's table of sections 5 and 6: per depth, the median first and last block's gradient."""
    return notebook_definitions()["first_and_last"](kind)


def growth(values):
    return notebook_definitions()["growth_per_block"](values)


def test_a_plain_stack_gradient_grows_by_a_steady_factor_per_block():
    steps = growth(first_and_last("plain")[0])
    assert all(1.25 < f < 1.6 for f in steps), steps  # the text: "about 1.4 (x1.36 to x1.50)"


def test_without_bn_the_plain_stack_gradient_does_not_grow():
    first = first_and_last("plain_no_bn")[0]
    steps = growth(first)
    assert max(first) < 1 and first[-1] < first[0] / 10, first  # the text: 0.086 at N = 8, 0.0005 at 48
    assert all(f < 1 for f in steps[1:]), steps  # the text: it falls from N = 16 on


def test_a_residual_stack_gradient_grows_ever_more_slowly():
    steps = growth(first_and_last("residual")[0])
    assert all(1 < f < 1.2 for f in steps), steps
    assert steps[-1] < steps[0], steps


def test_at_48_blocks_the_plain_stack_first_to_last_ratio_is_millions_the_residual_one_small():
    plain, residual = first_and_last("plain"), first_and_last("residual")
    assert plain[0][-1] / plain[1][-1] > 1e5  # the text: about 3 million
    assert residual[0][-1] / residual[1][-1] < 100  # the text: 10


@pytest.mark.parametrize("kind", ["residual", "preact"])
def test_residual_stacks_grow_for_the_two_reasons_of_section_5(kind):
    rows = notebook_definitions()["the_two_parts"](kind)
    output_std, output_grad, input_grad, path_back = zip(*rows)
    assert all(a < b for a, b in zip(output_std, output_std[1:])), output_std  # 1. the output grows
    assert all(a < b for a, b in zip(output_grad, output_grad[1:])), output_grad  # and its gradient
    steps = growth(path_back)  # 2. the path back adds a little per block, less and less
    assert all(1 < f < 1.15 for f in steps) and steps[-1] < steps[0], steps
    # the gradient at the input grows about as much as the first block's weight gradient
    first = first_and_last(kind)[0]
    assert 0.8 < (input_grad[-1] / input_grad[0]) / (first[-1] / first[0]) < 1.25


def test_the_plain_profile_shrinks_block_after_block_towards_the_output():
    profile = notebook_definitions()["gradient_norms"]("plain", 16)  # the figure of "Explore"
    assert all(a > b for a, b in zip(profile, profile[1:])), profile


def test_pre_activation_gradients_are_about_basic_blocks_and_grow_slowly():
    preact, residual = first_and_last("preact")[0], first_and_last("residual")[0]
    assert all(0.5 < p / r < 1.2 for p, r in zip(preact, residual)), (preact, residual)
    assert all(1 < f < 1.2 for f in growth(preact)), preact


def test_the_open_shortcut_path_starts_at_half_and_shrinks_with_depth():
    namespace = notebook_definitions()
    shares = [statistics.median(namespace["open_shortcut_share"](depth, seed) for seed in namespace["SEEDS"])
              for depth in namespace["SHARE_DEPTHS"]]
    assert namespace["SHARE_DEPTHS"][0] == 1 and 0.45 < shares[0] < 0.55, shares  # "half ... after the first block"
    assert all(a > b for a, b in zip(shares, shares[1:])) and shares[-1] < 0.2, shares  # "about 10% at N = 48"


def test_plain_stacks_explode_about_as_fast_at_16_and_64_channels():
    narrow, wide = plain_growth_per_block(16), plain_growth_per_block(64)
    assert 1.25 < narrow < 1.6 and 1.25 < wide < 1.6
    assert abs(wide / narrow - 1) < 0.05  # well within the question's 10%


# ---------------------------------------------------------------- exercise 2: the checkers


def test_width_prediction_right_answer_passes_and_shows_the_measurement(capsys):
    assert_passes(check_width_prediction({"plain_growth_with_64_channels": "About the same "}))


@pytest.fixture
def measured_width(monkeypatch):
    """The width question with its measurement replaced by the known answer (the test above measures)."""
    monkeypatch.setattr(WIDTH_QUESTIONS[0], "measure", lambda: "about the same")


@pytest.mark.parametrize("answer,named", [("larger", "wrong-answer"), (1.4, "wrong-kind-of-answer")])
def test_a_wrong_width_prediction_gets_a_nudge_not_the_answer(measured_width, answer, named, capsys):
    result = check_width_prediction({"plain_growth_with_64_channels": answer})
    assert mistakes(result) == [named]
    assert "measures" not in capsys.readouterr().out


RIGHT_ZERO_INIT = {"tensors_with_gradient": 16, "which_tensors": {"bn2.weight", "bn2.bias"}, "after_one_step": 48}


def test_zero_init_predictions_right_answers_pass(capsys):
    assert_passes(check_zero_init_predictions(RIGHT_ZERO_INIT))


@pytest.fixture
def measured_zero_init(monkeypatch):
    for question, truth in zip(ZERO_INIT_QUESTIONS, [16, {"bn2.weight", "bn2.bias"}, 48]):
        monkeypatch.setattr(question, "measure", lambda truth=truth: truth)


def test_wrong_zero_init_predictions_get_nudges_not_the_answers(measured_zero_init, capsys):
    result = check_zero_init_predictions({"tensors_with_gradient": 48, "which_tensors": {"0.bn2.weight"},
                                          "after_one_step": 16})
    assert mistakes(result) == ["too-high", "wrong-answer", "too-low"]
    assert "bn2.bias" not in capsys.readouterr().out  # the set is never shown


def test_unanswered_questions_say_what_to_fill_in_and_point_to_the_worked_answers(capsys):
    assert mistakes(check_width_prediction({})) == ["no-prediction"]
    assert mistakes(check_zero_init_predictions({})) == ["no-prediction"] * 3
    out = capsys.readouterr().out
    assert 'show_solution("plain_stack_width")' in out and 'show_solution("zero_init_stack")' in out
    assert {"plain_stack_width", "zero_init_stack"} <= set(solution_names())


# ---------------------------------------------------------------- exercise 2: the worked answers


def test_the_width_worked_answer_measures_about_the_same_growth(capsys):
    runpy.run_module("resnet_edu.exercises.solutions.plain_stack_width")
    lines = [line for line in capsys.readouterr().out.splitlines() if "each added block multiplies" in line]
    factors = [float(line.rsplit(" ", 1)[1]) for line in lines]
    assert [line.split(" ")[0] for line in lines] == ["16", "64"]
    assert abs(factors[1] / factors[0] - 1) < 0.10


def test_the_zero_init_worked_answer_prints_what_the_checker_accepts(capsys):
    answer = runpy.run_module("resnet_edu.exercises.solutions.zero_init_stack")
    out = capsys.readouterr().out
    # the same stack, input and target as the checker's (make_stack, Kaiming initialisation)
    _, x, target = zero_init_stack()
    assert torch.equal(answer["x"], x) and torch.equal(answer["target"], target)
    assert answer["moving"] == tensors_with_gradient()
    assert f"{RIGHT_ZERO_INIT['tensors_with_gradient']} of 48 parameters get a gradient" in out
    assert f"after one SGD step: {RIGHT_ZERO_INIT['after_one_step']} parameters" in out


# ---------------------------------------------------------------- the committed notebook, as GitHub shows it


def test_no_stored_output_gives_an_exercise_away():
    exercise = next(c for c in code_cells() if "check_basic_block(MyBasicBlock" in "".join(c["source"]))
    assert exercise["outputs"] == [], "the checker's report names the mistakes: store the cell without it"
    assert "nbval-ignore-output" in exercise["metadata"].get("tags", [])
    everything = "\n".join(stored_text(c) for c in code_cells())
    for answer in ["bias=False", "ReLU before the addition", "the code measures", "bn2.bias"]:
        assert answer not in everything, answer


def test_the_slider_is_live_only_and_its_figure_is_stored_before_it():
    cells = code_cells()
    slider = next(i for i, c in enumerate(cells) if "widgets.interact(plot_profile" in "".join(c["source"]))
    assert all("application/vnd.jupyter.widget-view+json" not in o.get("data", {}) for o in cells[slider]["outputs"])
    figure = cells[slider - 1]
    assert "plot_profile(16)" in "".join(figure["source"])
    assert any("image/png" in o.get("data", {}) for o in figure["outputs"])
    assert "value=16" in "".join(cells[slider]["source"])  # the slider opens on the stored figure's N


def test_every_show_solution_of_notebook_01_has_a_solution_file():
    names = {name for c in code_cells() for name in
             re.findall(r'show_solution\("(\w+)"\)', "".join(c["source"]))}
    assert names == {"residual_block", "plain_stack_width", "zero_init_stack"}
    assert names <= set(solution_names())


class OneBNTwice(nn.Module):
    """A block with a single BN applied after both convolutions (registered once, called twice)."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        return F.relu(self.bn(self.conv2(F.relu(self.bn(self.conv1(x))))) + x)


def test_one_bn_called_after_both_convolutions_is_named_not_matched():
    assert mistakes(check_basic_block(OneBNTwice, identity_only=True)) == ["wrong-parameter-count", "layers-differ"]
