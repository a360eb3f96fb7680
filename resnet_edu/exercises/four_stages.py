"""The checkers of notebook 03: ``check_stage`` (exercise 1, the stage builder),
``check_resnet_forward`` (exercise 2, the forward pass of the ResNet class, written out) and
``check_resnet18_predictions`` (exercise 3, predict, then check).

A learner's ``make_stage(block, in_channels, width, num_blocks, stride)`` is built for stages of
ResNet18, ResNet34 and ResNet50 and compared with :func:`resnet_edu.resnet.make_stage`, which
ResNet builds its four stages with: first the facts of a stage (how many blocks, which one gets
the stride, the in_channels bookkeeping, which blocks project), then the engine's generic checks.
"""

import re

import torch

from ..blocks import BasicBlock, Bottleneck, block_kind
from ..inside import kept_as_is
from ..measure import count_macs, count_parameters, on_meta
from ..resnet import ResNet, make_stage, resnet18, resnet50
from .engine import (FAILED, REFERENCE_MISTAKES, Case, Mistake, call_learner, catalogue, check_facts_then_reference,
                     checking, exception_line, explain_exception, is_the_function, matching_mistake,
                     randomise_batchnorm, reporting_crashes, same_values)
from .predictions import PREDICTION_MISTAKES, Question, check_predictions


class StageCase(Case):
    """A Case whose arguments start with a block class: printed by name, not as <class '...'>."""

    def call_text(self, name):
        block, *rest = self.args
        return f"{name}({', '.join([block.__name__] + [repr(a) for a in rest])})"


STAGE_CASES = [
    StageCase("ResNet18's layer1: two basic blocks, stride 1", (BasicBlock, 64, 64, 2, 1), {}, (2, 64, 8, 8)),
    StageCase("ResNet34's layer2: four basic blocks, stride 2", (BasicBlock, 64, 128, 4, 2), {}, (2, 64, 8, 8)),
    StageCase("ResNet50's layer1: three bottlenecks of width 64, stride 1", (Bottleneck, 64, 64, 3, 1), {},
              (2, 64, 8, 8)),
    StageCase("ResNet50's layer2: four bottlenecks of width 128, stride 2", (Bottleneck, 256, 128, 4, 2), {},
              (2, 256, 8, 8)),
]


STAGE_MISTAKE_IDS = catalogue(REFERENCE_MISTAKES, {
    "wrong-number-of-blocks": "the stage has more or fewer blocks than num_blocks",
    "same-block-repeated": "one block object fills several places of the stage (their weights are shared)",
    "fixed-block-class": "a block is built from a fixed class instead of the block argument",
    "stride-on-wrong-block": "a block other than the first has the stride, or the first lacks it",
    "wrong-in-channels": "a block is built for the wrong number of input channels",
    "wrong-width": "a block is built with another width than the stage's width argument",
    "wrong-block-kind": "a block projects where it should not, or not where it should",
    "blocks-not-numbered": "the blocks are named, not numbered 0, 1, ... as torchvision's weights expect",
})


def _describe_block(block):
    out_channels = block.conv1.out_channels * block.expansion
    stride = f", stride {block.stride}" if block.stride != 1 else ""
    return f"a {block_kind(block)} ({block.conv1.in_channels} -> {out_channels} channels{stride})"


def _which_blocks(indices, num_blocks):
    """'stage[0], the first block' or 'stage[1], stage[2] and stage[3]': indexed as the learner
    would index the nn.Sequential, with the first block named as such."""
    names = [f"stage[{i}]" for i in indices]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    if indices == [0]:
        return f"{listed}, the first block"
    return f"{listed} of {num_blocks} blocks"


def _stride_problem(index, mine, theirs):
    if index == 0:
        return (f"stride {mine.stride} instead of {theirs.stride}: the first block of a stage gets "
                "the stage's stride (stride 2 halves the resolution)")
    return (f"stride {mine.stride} instead of {theirs.stride}: only the first block of a stage gets "
            "the stride, the others keep the resolution (stride 1)")


def _block_problems(index, mine, theirs, width):
    """(mistake id, words) of what is wrong with one block of the learner's stage, or None."""
    problems = []
    if mine.conv1.out_channels != theirs.conv1.out_channels:
        problems.append(("wrong-width", f"built with width {mine.conv1.out_channels}, but the stage's width is "
                         f"{width}: a block expands its width itself (width w gives out w * block.expansion channels); "
                         "what width does each block of the stage need?"))
    if mine.stride != theirs.stride:
        problems.append(("stride-on-wrong-block", _stride_problem(index, mine, theirs)))
    if mine.conv1.in_channels != theirs.conv1.in_channels:
        # a nudge, not the fix: the counts and a question, never the formula
        question = ("the first block receives the stage's in_channels" if index == 0 else
                    f"how many channels does a block of width {width} give out?")
        problems.append(("wrong-in-channels", f"built for {mine.conv1.in_channels} input channels, but "
                         f"{theirs.conv1.in_channels} flow into it: {question}"))
    if not problems and block_kind(mine) != block_kind(theirs):
        problems.append(("wrong-block-kind", f"it is {_describe_block(mine)}, expected {_describe_block(theirs)}"))
    if not problems:
        return None
    return problems[0][0], "; ".join(text for _, text in problems)


def _check_stage_blocks(result, stage, case):
    """The facts of a stage one block at a time: count, stride, in_channels, projection. Blocks
    with the same problem are reported on one line."""
    block_class, _, width, num_blocks, _ = case.args
    blocks = list(stage.children())
    placed = list(stage._modules.values())  # children() lists a module placed twice only once
    if len(placed) == num_blocks and len(blocks) < num_blocks:
        result.fail("same-block-repeated",
                    f"the stage has {num_blocks} places but only {len(blocks)} different block object(s): one "
                    "block placed several times shares its weights between those places. Does each place "
                    "get a block of its own?")
        return
    if len(blocks) != num_blocks:
        result.fail("wrong-number-of-blocks",
                    f"expected {num_blocks} blocks (num_blocks={num_blocks}), got {len(blocks)}: "
                    "loop for i in range(num_blocks)")
        return
    strange = [type(b).__name__ for b in blocks if not isinstance(b, block_class)]
    if strange:
        result.fail("fixed-block-class", f"build every block with the block argument, block(...), here "
                    f"{block_class.__name__}, not a fixed class: found {strange}")
        return
    blocks_with_problem = {}  # (mistake id, words) -> indices of the blocks that have it
    for i, (mine, theirs) in enumerate(zip(blocks, make_stage(*case.args))):
        problem = _block_problems(i, mine, theirs, width)
        if problem:
            blocks_with_problem.setdefault(problem, []).append(i)
    for (mistake, text), indices in blocks_with_problem.items():
        result.fail(mistake, f"{_which_blocks(indices, num_blocks)}: {text}")
    names = list(stage._modules)
    if not blocks_with_problem and names != [str(i) for i in range(num_blocks)]:
        result.fail("blocks-not-numbered",
                    f"the right blocks, but named {names}: a state_dict's keys follow these names, and "
                    "torchvision's weights (loaded at the end of this notebook) number a stage's blocks "
                    "0, 1, 2, ... (layer1.0.conv1.weight). Build the nn.Sequential from the blocks in order, "
                    "without names.")
    elif not blocks_with_problem:
        kinds = ", ".join(block_kind(b) for b in blocks)
        result.ok(f"the right blocks with the right in_channels and strides: {kinds}")


def check_stage(candidate_function):
    """Exercise 1 of notebook 03: check a learner's ``make_stage(block, in_channels, width, num_blocks, stride)``.

    It must return an nn.Sequential of ``num_blocks`` blocks, ``block(in_channels, width, stride)``
    first and ``block(width * block.expansion, width, 1)`` after it, as ResNet's stages are built.
    """
    name = getattr(candidate_function, "__name__", "make_stage")
    title = "Checking your stage builder against resnet_edu's ResNet stages"
    with checking("stage", title, STAGE_MISTAKE_IDS) as result:
        for case in STAGE_CASES if is_the_function(result, candidate_function, name) else []:
            check_facts_then_reference(result, candidate_function, make_stage, case, name,
                                       _check_stage_blocks)
    return result


# -------------------------------------------------------------------------- exercise 3: predict, then check


def block_name(name):
    """'layer2[0]' for PyTorch's module name 'layer2.0' too: either way of naming a block counts."""
    return re.sub(r"^(layer\d)\.(\d+)$", r"\1[\2]", name.strip()) if isinstance(name, str) else name


def conv_block_names(model):
    """The Conv Blocks of a ResNet as a set of names such as {'layer2[0]'}."""
    return {f"{stage}[{i}]" for stage in ("layer1", "layer2", "layer3", "layer4")
            for i, block in enumerate(getattr(model, stage)) if block_kind(block) == "Conv Block"}


RESNET18_QUESTIONS = [
    Question("parameters_100_classes", "1. parameters of resnet18(num_classes=100)",
             lambda: count_parameters(on_meta(resnet18, num_classes=100)),
             hint="Only the classifier depends on the number of classes: it has 512 weights and one "
                  "bias per class; start from ResNet18's 11,689,512 parameters."),
    Question("layer4_shape_600x400",
             "2. the shape leaving layer4 for one image 600 pixels high and 400 wide, (N, C, H, W)",
             lambda: tuple(on_meta(resnet18).forward_features(
                 torch.empty(1, 3, 600, 400, device="meta")).shape),
             hint="How many times do the stem and the stages halve the height and the width, and which "
                  "way do they round an odd side? Work out the height and the width separately, and give "
                  "all four numbers as a tuple, the batch of one included."),
    Question("bottleneck_conv_blocks", "3. the Conv Blocks of ResNet(Bottleneck, [2, 3, 4, 3])",
             lambda: conv_block_names(on_meta(ResNet, Bottleneck, [2, 3, 4, 3])),
             hint="A block needs a projection where the stride or the channel count changes: compare "
                  "the channels that flow into each block with the channels it gives out (a block of "
                  "width w gives out w * block.expansion). Name the blocks as a set of strings such as "
                  "{'layer2[1]', 'layer3[2]'} (the index counts from 0)."),
    Question("gmacs_at_448", "4. G MACs of ResNet18 for one 448x448 image (within 2%)",
             lambda: count_macs(on_meta(resnet18), image_size=448) / 1e9, tolerance=0.02,
             hint="A convolution's MACs are its output pixels times its weights. How many more output "
                  "pixels does every convolution have at 448x448 than at 224x224 (1.814 G MACs)?"),
]


def check_resnet18_predictions(answers):
    """Exercise 3 of notebook 03: each prediction in the dict ``answers`` against the measurement."""
    key = "bottleneck_conv_blocks"
    if isinstance(answers, dict) and isinstance(answers.get(key), (set, frozenset, list, tuple)):
        answers = {**answers, key: {block_name(name) for name in answers[key]}}
    return check_predictions("resnet18_predictions", "Checking your predictions against measurements",
                             RESNET18_QUESTIONS, answers)


# ---------------------------------------------------------------------------------------- exercise 2


STAGES = ("layer1", "layer2", "layer3", "layer4")


def forward_with(model, x, *, bn1=True, relu=True, maxpool=True, stages=STAGES, pool="avg", softmax=False):
    """ResNet's forward pass with one step changed, to recognise a learner's mistake by its output;
    with the defaults it is ``model(x)`` itself (a test checks that)."""
    x = model.conv1(x)
    x = model.bn1(x) if bn1 else x
    x = torch.relu(x) if relu else x
    x = model.maxpool(x) if maxpool else x
    for stage in stages:
        x = getattr(model, stage)(x)
    x = x.mean((2, 3)) if pool == "avg" else x.amax((2, 3))
    x = model.fc(x)
    return x.softmax(1) if softmax else x


FORWARD_MISTAKES = [
    Mistake("maxpool-left-out", "the max-pool left out", dict(maxpool=False),
            "the stem's max-pool is missing, so every later map is twice as high and wide as in ResNet. The "
            "stem is conv1, bn1, relu, maxpool."),
    Mistake("relu-after-bn1-left-out", "no ReLU after bn1", dict(relu=False),
            "bn1's output goes into the max-pool without the ReLU. The stem is conv1, bn1, relu, maxpool."),
    Mistake("bn1-left-out", "bn1 left out", dict(bn1=False),
            "conv1's output is not normalised: the stem is conv1, bn1, relu, maxpool."),
    Mistake("stage-skipped", "a stage skipped", dict(stages=STAGES[1:]),
            "layer1 never runs (it keeps its input's shape, so nothing fails). Run the four stages in "
            "order, each once."),
    Mistake("stage-run-twice", "a stage run twice", dict(stages=("layer1", *STAGES)),
            "layer1 runs twice (it keeps its input's shape, so nothing fails). Run the four stages in "
            "order, each once."),
    Mistake("max-pooling-at-the-end", "max pooling instead of average pooling", dict(pool="max"),
            "the head takes the largest value of each map; ResNet averages each whole map (model.avgpool, "
            "global average pooling), then flattens."),
    Mistake("softmax-at-the-end", "a softmax after fc", dict(softmax=True),
            "the output went through a softmax. ResNet returns fc's scores (logits); the loss "
            "(cross-entropy) applies the softmax itself."),
]

FORWARD_MISTAKE_IDS = catalogue(FORWARD_MISTAKES, {
    "not-callable": "the answer is not a function",
    "function-raises": "resnet_forward raised an exception",
    "stages-out-of-order": "a stage received the wrong number of channels (skipped, repeated or out of order)",
    "fc-input-not-flat": "fc received no (N, C) tensor: not pooled over the whole map, not flattened, or "
                         "fc before the pooling",
    "pooling-not-global": "a pooling window of a fixed size, too large for a small image",
    "calls-the-model": "resnet_forward calls model(x), model.forward or model.forward_features instead of "
                       "running the layers",
    "not-a-tensor": "resnet_forward returned something other than a tensor",
    "no-graph": "the output records no graph (no_grad, inference_mode or detach inside), so no gradient can flow",
    "wrong-output-shape": "the output's shape is not (N, num_classes)",
    "outputs-differ": "the output differs from model(x) in no known way",
    "check-could-not-finish": "the learner's code broke the check itself",
})

FORWARD_HINTS = [  # (what the exception says, its mistake id, what to do)
    ("mat1 and mat2 shapes cannot be multiplied", "fc-input-not-flat",
     "fc multiplies the last dimension of its input by its weights and expects (N, C). Average each whole "
     "map first (model.avgpool works for any image size), then flatten to (N, C) with torch.flatten(x, 1); "
     "fc comes last"),
    ("Output size is too small", "pooling-not-global",
     "a pooling window of a fixed size is larger than the map that layer4 gives out for this image size. "
     "Average each whole map, whatever its size: model.avgpool is nn.AdaptiveAvgPool2d(1)"),
    ("channels, but got", "stages-out-of-order",
     "a stage received another number of channels than it was built for: run the stem, then layer1, "
     "layer2, layer3 and layer4 in order, each once"),
]

FORWARD_CASES = [  # (what the model is, how to build it, two input shapes)
    ("ResNet18 (ImageNet stem)", lambda: resnet18(num_classes=10), [(2, 3, 64, 64), (1, 3, 96, 64)]),
    ("ResNet50 (ImageNet stem)", lambda: resnet50(num_classes=10), [(2, 3, 64, 64), (1, 3, 96, 64)]),
    ("ResNet18 (CIFAR stem)", lambda: resnet18(num_classes=10, stem="cifar"), [(2, 3, 32, 32), (1, 3, 24, 40)]),
]


def _hint(exc):
    """(mistake id, what to do) for an exception from the learner's resnet_forward, or None."""
    return next(((mistake, hint) for needle, mistake, hint in FORWARD_HINTS if needle in str(exc)), None)


def _forward_mistake(exc):
    return (_hint(exc) or ("function-raises", ""))[0]


def _explain_forward(exc):
    """The exception, then in plain words what it says about the forward pass; the engine's advice,
    which is about building a block, only where no forward-pass hint applies."""
    hint = _hint(exc)
    if hint:
        return f"{exception_line(exc)}. In plain words: {hint[1]}"
    return explain_exception(exc)


def _recording(method, name, calls):
    def recorded(*args, **kwargs):
        calls.append(name)
        return method(*args, **kwargs)
    return recorded


def _run_learner(result, resnet_forward, model, x):
    """The learner's output, or None with a FAIL line; a call of model(x) itself is a FAIL."""
    called = []
    hook = model.register_forward_hook(lambda *args: called.append("model(x)"))
    shortcuts = [name for name in ("forward", "forward_features") if hasattr(model, name)]
    for name in shortcuts:  # instance attributes shadow the methods while the learner's code runs
        setattr(model, name, _recording(getattr(model, name), f"model.{name}", called))
    try:
        with kept_as_is(model):  # with gradients on: a forward pass has to record the graph training needs
            out = call_learner(result, "resnet_forward(model, x)", resnet_forward, model, x.clone(),
                               mistake=_forward_mistake, explain=_explain_forward)
    finally:
        hook.remove()
        for name in shortcuts:
            delattr(model, name)
    if out is FAILED:
        return None
    if called:
        result.fail("calls-the-model", f"resnet_forward calls {called[0]}, which does what it should write out: "
                    "run the model's layers, model.conv1 to model.fc, yourself")
        return None
    if not isinstance(out, torch.Tensor):
        result.fail("not-a-tensor", f"resnet_forward returned {type(out).__name__}, expected a tensor: "
                    "end with return model.fc(x)")
        return None
    if not out.requires_grad:
        result.fail("no-graph", "resnet_forward's output records no graph, so training could not compute "
                    "gradients through it: remove torch.no_grad(), torch.inference_mode() or .detach() from it")
        return None
    return out.detach()


def _check_forward(result, resnet_forward, model, shape):
    x = torch.randn(shape)
    out = _run_learner(result, resnet_forward, model, x)
    if out is None:
        return
    with torch.no_grad():
        expected = model(x)
        if out.shape != expected.shape:
            result.fail("wrong-output-shape", f"x of shape {shape}: expected an output of shape "
                        f"{tuple(expected.shape)} (N, num_classes), got {tuple(out.shape)}. Flatten with "
                        "torch.flatten(x, 1), which keeps the batch dimension even for one image")
        elif same_values(out, expected):
            result.ok(f"x of shape {shape}: equals model(x), shape {tuple(expected.shape)}")
        else:
            mistake = matching_mistake(out, FORWARD_MISTAKES, lambda m: forward_with(model, x, **m.output))
            if mistake is not None:
                mistake.fail(result, prefix=f"x of shape {shape}: ")
            else:
                result.fail("outputs-differ", f"x of shape {shape}: the output differs from model(x). Compare "
                            "your steps with the model's layers: the stem (conv1, bn1, relu, maxpool), the four "
                            "stages, then avgpool, flatten, fc")


def _model(build):
    model = build()
    randomise_batchnorm(model, torch.Generator().manual_seed(0))  # every layer matters in eval mode
    return model.eval()


def check_resnet_forward(resnet_forward):
    """Check a learner's ``resnet_forward(model, x)`` against ``model(x)``: ResNet18 and ResNet50, the
    ImageNet and the CIFAR stems, two input sizes each, in eval mode with random weights."""
    title = "Checking resnet_forward(model, x) against model(x)"
    with checking("resnet_forward", title, FORWARD_MISTAKE_IDS) as result:
        if not callable(resnet_forward) or isinstance(resnet_forward, torch.nn.Module):
            result.fail("not-callable", f"expected a function resnet_forward(model, x), got "
                        f"{type(resnet_forward).__name__}")
            return result
        for what, build, shapes in FORWARD_CASES:
            result.note(what)
            model = _model(build)
            for shape in shapes:
                with reporting_crashes(result):
                    _check_forward(result, resnet_forward, model, shape)
    return result


MISTAKE_IDS = catalogue(STAGE_MISTAKE_IDS, FORWARD_MISTAKE_IDS, PREDICTION_MISTAKES)  # every id this module reports
