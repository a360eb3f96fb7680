"""The checkers of notebook 05 (training): ``check_decay_groups``, ``check_per_class_accuracy``,
``check_random_flip`` and ``check_train_step``.

Each runs the learner's function on a small case, compares it with the reference in ``resnet_edu``
and prints what is right and what is wrong; it never raises on a wrong answer.
"""

import contextlib
import copy
import dataclasses
import warnings
from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import nn

from ..blocks import BasicBlock, conv3x3
from ..loaders import random_flip
from ..metrics import per_class_accuracy
from ..resnet import resnet18
from ..train import TrainConfig, make_optimizer, make_scheduler
from .engine import (FAILED, REFERENCE_MISTAKES, SEED, Mistake, call_learner, catalogue, checking, matching_mistake,
                     one_cause_for_shape_mismatch, reporting_crashes, same_values)

CALL_MISTAKES = {
    "function-raises": "calling the learner's function raised an exception",
    "wrong-output-shape": "the answer has another shape than the reference's",
    "outputs-differ": "the answer matches neither the reference nor a known mistake",
}
FLIP_CALL_MISTAKES = {
    "flip-not-broadcast": "flip was used against the images without a shape that puts its entries in dimension 0",
    "ignores-flip": "right for the first flip pattern, wrong for another",
    "changes-its-input": "the function changed the batch it was given, in place",
    "wrong-dtype": "the flipped images have another dtype than the images given",
}


def _call(result, function, *args, mistake="function-raises", explain=None):
    """The learner's function on ``args``, or FAILED with a FAIL line (``mistake`` and ``explain`` as
    :func:`call_learner` takes them)."""
    return call_learner(result, "calling it", function, *args, mistake=mistake, explain=explain)


def _name_the_answer(result, answer, expected, mistakes, right, otherwise):
    """ok ``right`` when the answer equals the expected one; else the known mistake it matches, or
    ``otherwise``."""
    if same_values(answer, expected):
        result.ok(right)
        return
    mistake = matching_mistake(answer, mistakes, lambda m: m.output)
    if mistake is not None:
        result.fail(mistake.id, mistake.explanation)
    else:
        result.fail("outputs-differ", otherwise)


# ---------------------------------------------------------------------------------------- weight decay

DECAY_MISTAKES = catalogue(CALL_MISTAKES, {
    "not-two-groups": "the function did not return two lists (decay, no_decay)",
    "parameter-in-both-groups": "a parameter is in both groups",
    "parameter-in-no-group": "a parameter is in neither group",
    "decay-on-bn-or-bias": "a BatchNorm scale or shift, or a bias, gets weight decay",
    "no-decay-on-weights": "a convolution or linear weight misses weight decay",
})


def _decay_group_problems(model, decay, no_decay):
    """What is wrong with the two groups (sets of parameter ids), each as (mistake id, words)."""
    names = {id(p): name for name, p in model.named_parameters()}
    expected = {id(p) for p in make_optimizer(model, TrainConfig()).param_groups[0]["params"]}  # the trainer's
    overlap = sorted(names[i] for i in decay & no_decay if i in names)
    missing = sorted(name for i, name in names.items() if i not in decay | no_decay)
    decayed_bn = sorted(names[i] for i in decay - expected if i in names)
    undecayed = sorted(names[i] for i in expected - decay if i in names)
    problems = [
        (overlap, "parameter-in-both-groups", "parameter(s) are in both groups, e.g. {}: each belongs in one"),
        (missing, "parameter-in-no-group",
         "parameter(s) are in neither group, e.g. {}: the optimiser would never update them"),
        (decayed_bn, "decay-on-bn-or-bias", "BatchNorm scale/shift or bias tensor(s) get weight decay, e.g. {}: "
                                            "a BN scale or shift, or a bias, sets a size or an offset, and decay "
                                            "would only pull it towards 0 (Bag of Tricks, section 3.1: no bias "
                                            "decay). What do these tensors share that the convolution and "
                                            "linear weights do not? Look at their shapes"),
        (undecayed, "no-decay-on-weights", "convolution or linear weight(s) miss weight decay, e.g. {}: these are "
                                           "the weights decay should keep small"),
    ]
    return [(mistake, f"{len(found)} " + text.format(found[0])) for found, mistake, text in problems if found]


def check_decay_groups(split_decay_groups):
    """``split_decay_groups(model) -> (decay, no_decay)``: lists of parameters, as make_optimizer does."""
    with checking("decay_groups", "Checking split_decay_groups on ResNet18:", DECAY_MISTAKES) as result:
        model = resnet18(num_classes=10, stem="cifar")
        groups = _call(result, split_decay_groups, model)
        if groups is FAILED:
            return result
        if not (isinstance(groups, (tuple, list)) and len(groups) == 2):
            result.fail("not-two-groups", f"expected two lists (decay, no_decay); got {type(groups).__name__}")
            return result
        decay, no_decay = ({id(p) for p in group} for group in groups)
        for problem in _decay_group_problems(model, decay, no_decay):
            result.fail(*problem)
        if not result.failures:
            result.ok(f"{len(decay)} conv/linear weights decay; {len(no_decay)} BatchNorm and bias tensors do not")
    return result


# ---------------------------------------------------------------------------------------- per-class accuracy

ACCURACY_MATRIX = torch.tensor([[8, 1, 1], [2, 6, 2], [5, 3, 22]])  # rows: true class, columns: predicted
ACCURACY_MISTAKES = [
    Mistake("counts-not-fractions", "counts instead of fractions", ACCURACY_MATRIX.diagonal().double(),
            "these are counts of correctly classified images, not the fraction of each class"),
    Mistake("divided-by-column-sums", "divided by the column sums (precision)",
            ACCURACY_MATRIX.diagonal().double() / ACCURACY_MATRIX.sum(0).double(),
            "divided by the column sums (how often a class was predicted: its precision); per-class accuracy "
            "divides by the row sums (how many images truly are that class)"),
    Mistake("divided-by-the-total", "divided by the number of all images",
            ACCURACY_MATRIX.diagonal().double() / ACCURACY_MATRIX.sum().double(),
            "divided by the number of all images; each class's accuracy divides by how many images truly are "
            "that class (its row's sum)"),
    Mistake("integer-division", "integer division", (ACCURACY_MATRIX.diagonal() // ACCURACY_MATRIX.sum(1)).double(),
            "integer division rounds every fraction down to 0 or 1: divide with / (a float result)"),
]


ACCURACY_CALL_MISTAKES = {
    "returned-none": "the function returned None (it has no return, or returns nothing)",
    "not-numbers": "the function returned something that is not numbers (a dict, a string, ...)",
}


def _as_numbers(result, answer):
    """The learner's answer as a float64 tensor of its own shape, or None (and a FAIL line) when it holds
    no numbers."""
    if answer is None:
        result.fail("returned-none", "it returned None: does the function end with a return?")
        return None
    try:
        return torch.as_tensor(answer, dtype=torch.float64)
    except Exception:  # noqa: BLE001 - a dict, a string, a list of lists of different lengths: no numbers
        result.fail("not-numbers", f"it returned a {type(answer).__name__}, which the checker cannot read as "
                    "numbers: return one fraction per class, as a tensor (or a list of numbers)")
        return None


def check_per_class_accuracy(candidate):
    """``candidate(matrix) -> (classes,)`` fractions: the diagonal over each true class's row sum."""
    title = "Checking per_class_accuracy on a 3-class confusion matrix:"
    with checking("per_class_accuracy", title,
                  catalogue(CALL_MISTAKES, ACCURACY_CALL_MISTAKES, ACCURACY_MISTAKES)) as result:
        expected = per_class_accuracy(ACCURACY_MATRIX).double()
        answer = _call(result, candidate, ACCURACY_MATRIX.clone())
        if answer is FAILED:
            return result
        answer = _as_numbers(result, answer)
        if answer is None:
            return result
        shown = [round(v, 3) for v in expected.tolist()]
        if answer.shape != expected.shape:
            result.fail("wrong-output-shape", f"expected one number per class, shape {tuple(expected.shape)}; "
                        f"got {tuple(answer.shape)}")
        else:
            _name_the_answer(result, answer, expected, ACCURACY_MISTAKES,
                             f"accuracies {shown}: the diagonal over the row sums",
                             f"expected {shown}; got {[round(v, 3) for v in answer.tolist()]}")
    return result


# ---------------------------------------------------------------------------------------- random flip

FLIP_IMAGES = torch.arange(4 * 3 * 5 * 6, dtype=torch.uint8).view(4, 3, 5, 6)  # N, C, H, W all different
FLIP = torch.tensor([True, False, True, False])
FLIP_OTHER = torch.tensor([False, True, True, False])
FLIP_MISTAKES = [
    Mistake("nothing-flipped", "nothing flipped", FLIP_IMAGES,
            "nothing was flipped: mirror the images whose flip entry is True"),
    Mistake("flipped-upside-down", "flipped upside down",
            torch.where(FLIP.view(-1, 1, 1, 1), FLIP_IMAGES.flip(2), FLIP_IMAGES),
            "flipped upside down (dimension 2 is the height); a horizontal flip reverses dimension 3, the width"),
    Mistake("flipped-every-image", "every image flipped", FLIP_IMAGES.flip(3),
            "every image was flipped; flip only those where flip is True"),
    Mistake("flipped-the-wrong-images", "the wrong images flipped",
            torch.where(FLIP.view(-1, 1, 1, 1), FLIP_IMAGES, FLIP_IMAGES.flip(3)),
            "flipped exactly the wrong images: flip where flip is True"),
]


# A shape mismatch in the learner's flip is flip, one entry per image, lined up against another of the
# images' dimensions than the first.
_flip_failure, _explain_flip_failure = one_cause_for_shape_mismatch(
    "flip-not-broadcast", "function-raises",
    "flip holds one entry per image, but its entries were lined up with another dimension of the images, "
    "shape (N, C, H, W), than the first: PyTorch lines up shapes from the right, and the error above says "
    "which sizes clashed. Give flip a shape that puts its entries in dimension 0 and broadcasts over each "
    "image's channels, rows and columns, so that each image's entry chooses for the whole image.")


def check_random_flip(candidate):
    """``candidate(images, flip) -> images``: mirror left-right exactly the images where flip is True."""
    title = "Checking random_flip on a batch of 4 images:"
    with checking("random_flip", title, catalogue(CALL_MISTAKES, FLIP_CALL_MISTAKES, FLIP_MISTAKES)) as result:
        images = FLIP_IMAGES.clone()
        answer = _call(result, candidate, images, FLIP.clone(), mistake=_flip_failure, explain=_explain_flip_failure)
        if answer is FAILED:
            return result
        if not torch.equal(images, FLIP_IMAGES):
            result.fail("changes-its-input", "it changed the batch it was given (in place); return a new tensor "
                        "and leave the input as it was, since the loader may pass a view of the whole data set")
        if not isinstance(answer, torch.Tensor) or answer.shape != FLIP_IMAGES.shape:
            shape = tuple(answer.shape) if isinstance(answer, torch.Tensor) else type(answer).__name__
            result.fail("wrong-output-shape", f"expected a tensor of shape {tuple(FLIP_IMAGES.shape)}; got {shape}")
        elif answer.dtype != FLIP_IMAGES.dtype:
            result.fail("wrong-dtype", f"the images arrived as {FLIP_IMAGES.dtype} and left as {answer.dtype}: "
                        "a flip moves pixels and keeps their type (no conversion needed)")
        else:
            _name_the_answer(result, answer, random_flip(FLIP_IMAGES, FLIP), FLIP_MISTAKES,
                             "images 0 and 2 are mirrored left-right, images 1 and 3 untouched",
                             "the result matches no flip of the batch; compare yours with images.flip(3)")
            if not result.failures:
                _check_another_pattern(result, candidate)
    return result


def _check_another_pattern(result, candidate):
    """The same function on another flip pattern: it must read flip, not the images' positions."""
    answer = _call(result, candidate, FLIP_IMAGES.clone(), FLIP_OTHER.clone(), mistake=_flip_failure,
                   explain=_explain_flip_failure)
    if answer is FAILED:
        return
    if isinstance(answer, torch.Tensor) and same_values(answer, random_flip(FLIP_IMAGES, FLIP_OTHER)):
        result.ok(f"with flip = {FLIP_OTHER.tolist()}: images 1 and 2 mirrored, 0 and 3 untouched")
    else:
        result.fail("ignores-flip", f"right for one flip pattern, wrong for flip = {FLIP_OTHER.tolist()}: "
                    "choose the images to mirror from flip, not from their positions in the batch")


# ---------------------------------------------------------------------------------------- one training step

TRAIN_STEPS = 3
# The course's optimiser (SGD, Nesterov momentum 0.9, decay on the weights) and schedule, over a run of
# 4 steps: the rate starts at 0.02 and is 0.11, 0.2 and 0.0002 after steps 1, 2 and 3, so it changes
# after every step and a step that uses the wrong one shows.
STEP_CONFIG = TrainConfig(lr=0.2, epochs=1, warmup=0.5)
STEPS_IN_THE_RUN = 4

# What the reference step does, in order; each mistake below is another order.
REFERENCE_ORDER = ("train", "forward", "zero_grad", "backward", "step", "schedule")
CLEARED_AFTER_BACKWARD = ("The weights hardly changed, although backward ran and the optimiser stepped: the "
                          "gradients were cleared after backward had computed them, so the optimiser found "
                          "nothing to apply. Where in the step does clearing the old gradients belong?")
STEP_BEFORE_BACKWARD = ("The optimiser stepped before backward had computed this step's gradients: it applied "
                        "those left from the step before, or none (so step 1 changed nothing), and once it has "
                        "changed the weights in place, backward cannot run, because it needs the weights the "
                        "forward pass used. In which order must the gradients be computed and applied?")
TWO_FORWARD_PASSES = ("The gradients are the reference's, but the BatchNorm running statistics moved twice in each "
                      "step: the model ran forward twice in training mode, and every training-mode forward pass "
                      "updates them (torch.no_grad() does not stop that). How many times does one step need the "
                      "model's outputs?")

STEP_MISTAKES = [
    Mistake("model-in-eval-mode", "the step ran in eval mode (BatchNorm used its running statistics)",
            ("forward", "zero_grad", "backward", "step", "schedule"),
            "The BatchNorm running statistics never changed, and already the loss of step 1 differs from the "
            "reference's: the forward pass ran in eval mode, so BatchNorm normalised with its stored statistics "
            "instead of the batch's, and updated nothing. The checker hands the model over in eval mode, as an "
            "evaluation leaves it: what does a training step have to do first?"),
    Mistake("own-loss-function", "a loss function of the learner's own, not the criterion handed over",
            ("train", "forward_own_loss", "zero_grad", "backward", "step", "schedule"),
            "The order of the step is right, but already step 1 computed a different loss from the "
            "reference's: the loss came from a loss function of your own, without label smoothing, not from "
            f"the criterion handed over (cross-entropy with label smoothing {STEP_CONFIG.label_smoothing}, as "
            "the course's default recipe trains). Which argument should compute the loss?"),
    Mistake("two-forward-passes", "the model ran forward twice in one step",
            ("train", "forward", "forward", "zero_grad", "backward", "step", "schedule"), TWO_FORWARD_PASSES),
    Mistake("two-forward-passes", "the model ran forward twice in one step",  # the second after the step
            ("train", "forward", "zero_grad", "backward", "step", "extra_forward", "schedule"), TWO_FORWARD_PASSES),
    Mistake("gradients-never-cleared", "the gradients were never cleared, so they piled up from step to step",
            ("train", "forward", "backward", "step", "schedule"),
            "After step 1 the weights equal the reference's, but from step 2 on they differ: each step applied "
            "the gradients of its own batch plus those of every batch before it. Backward adds to what .grad "
            "already holds; what has to happen to the last step's gradients before the next backward?"),
    Mistake("cleared-after-backward", "the gradients were cleared between backward and the optimiser step",
            ("train", "forward", "backward", "zero_grad", "step", "schedule"), CLEARED_AFTER_BACKWARD),
    Mistake("cleared-after-backward", "the gradients were cleared between backward and the optimiser step",
            ("train", "forward", "backward", "zero_grad_keep", "step", "schedule"), CLEARED_AFTER_BACKWARD),
    Mistake("optimizer-step-missing", "the optimiser never stepped",
            ("train", "forward", "zero_grad", "backward", "schedule"),
            "The weights never changed, although backward computed gradients (and the BatchNorm statistics "
            "moved, so the forward pass ran): nothing applied the gradients to the weights. Which of the "
            "function's arguments updates the parameters from their .grad?"),
    Mistake("backward-missing", "backward never ran, so there were no gradients",
            ("train", "forward", "zero_grad", "step", "schedule"),
            "The weights never changed, and no gradients were computed: the optimiser stepped with nothing to "
            "apply. What turns the loss into gradients?"),
    Mistake("step-before-backward", "the optimiser stepped before backward",  # with no gradients
            ("train", "forward", "zero_grad", "step", "backward", "schedule"), STEP_BEFORE_BACKWARD),
    Mistake("step-before-backward", "the optimiser stepped before backward",  # with the last step's
            ("train", "forward", "step", "zero_grad", "backward", "schedule"), STEP_BEFORE_BACKWARD),
    Mistake("step-before-backward", "the optimiser stepped before backward",  # with zeroed gradients
            ("train", "forward", "zero_grad_keep", "step", "backward", "schedule"), STEP_BEFORE_BACKWARD),
    Mistake("scheduler-before-optimizer", "the scheduler stepped before the optimiser",
            ("train", "forward", "zero_grad", "backward", "schedule", "step"),
            "The learning rate after each step is right, but each optimiser step used the rate meant for the "
            "step after it: the scheduler moved the rate on before the optimiser had used it (PyTorch warns "
            "about this order; the checker kept its warning quiet). Which of the two has to come first?"),
]
SCHEDULE_MISTAKES = [
    Mistake("scheduler-not-stepped", "the learning rate never changed: the scheduler was not stepped",
            ("train", "forward", "zero_grad", "backward", "step"),
            "nothing moved the schedule on. Which of the function's arguments changes the learning rate, and "
            "how often should it?"),
]
TRAIN_STEP_MISTAKES = catalogue({
    "function-raises": "calling the learner's function raised an exception",
    "check-could-not-finish": REFERENCE_MISTAKES["check-could-not-finish"],
    "returned-a-tensor": "the step returned the loss as a tensor, not a Python float",
    "no-float-returned": "the step returned no number (None, or something else)",
}, STEP_MISTAKES, {
    "weights-differ": "the weights or BatchNorm statistics differ from the reference's in no known way",
    "wrong-loss-returned": "the weights are right, but the returned values are not the steps' losses",
}, SCHEDULE_MISTAKES, {
    "lr-differs": "the learning rate after each step differs from the schedule's, in no known way",
})


def _tiny_resnet():
    """A stem, one basic block and a classifier: three BatchNorms, 10 classes, milliseconds a step on a CPU."""
    return nn.Sequential(conv3x3(3, 8), nn.BatchNorm2d(8), nn.ReLU(inplace=True), BasicBlock(8, 8),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))


@dataclass
class StepCase:
    model: nn.Module  # every run starts from a copy of it
    batches: list  # [(images (16, 3, 8, 8), labels (16,))], one batch per step


def _step_case():
    generator = torch.Generator().manual_seed(SEED)
    batches = [(torch.randn(16, 3, 8, 8, generator=generator), torch.randint(0, 10, (16,), generator=generator))
               for _ in range(TRAIN_STEPS)]
    return StepCase(_tiny_resnet(), batches)  # initialised from the seed that `checking` sets


def scripted_step(order):
    """A training step that does the operations of ``order``, in that order: the reference's, or a mistake's."""
    def step(model, images, labels, optimizer, scheduler, criterion):
        for operation in order:
            if operation == "train":
                model.train()
            elif operation == "forward":
                loss = criterion(model(images), labels)
            elif operation == "forward_own_loss":  # a loss function of the learner's own, without smoothing
                loss = nn.functional.cross_entropy(model(images), labels)
            elif operation == "extra_forward":  # the model's outputs once more, e.g. for an accuracy
                model(images)
            elif operation == "zero_grad":
                optimizer.zero_grad(set_to_none=True)
            elif operation == "zero_grad_keep":  # zeros in .grad instead of None
                optimizer.zero_grad(set_to_none=False)
            elif operation == "backward":
                loss.backward()
            elif operation == "step":
                optimizer.step()
            elif operation == "schedule":
                scheduler.step()
        return loss.item()
    return step


@dataclass
class StepRun:
    """What TRAIN_STEPS calls of a step did: after each, the weights and the BatchNorm running statistics
    (one vector), the learning rate and what the step returned; and the order in which backward and the
    optimiser's step ran in each (which tells apart mistakes that all leave the weights as they were)."""

    states: list = field(default_factory=list)
    lrs: list = field(default_factory=list)
    answers: list = field(default_factory=list)
    events: list = field(default_factory=list)
    raised: Optional[tuple] = None  # a simulated mistake that raises: (step, the gist of the exception)

    @property
    def trajectory(self):
        return torch.cat(self.states)

    @property
    def learning_rates(self):
        return torch.tensor(self.lrs, dtype=torch.float64)


def _state(model):
    tensors = [p.detach() for p in model.parameters()]
    tensors += [b for b in model.buffers() if b.is_floating_point()]  # BN running means and variances
    return torch.cat([t.flatten() for t in tensors]).clone()


def _gist(exc):
    """What an exception says, without the details that vary (versions, shapes): its type and first clause."""
    return type(exc).__name__, str(exc).split(":")[0].strip()


def _in_words(exc):
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message.split(' Hint:')[0].rstrip('.')}"


@contextlib.contextmanager
def _one_thread():
    """Tensors this small run faster on one thread, and a busy machine cannot stall the threads' hand-offs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _run_steps(step, case, call=None):
    """``step`` called TRAIN_STEPS times on a copy of the case's model, with its own optimiser, scheduler
    and loss. Before each call the model is put in eval mode, as an evaluation between epochs leaves it.
    ``call(number, step, *args)`` calls the learner's step: FAILED ends the run, which is then None. A
    simulated step that raises ends its run with ``raised`` set."""
    model = copy.deepcopy(case.model)
    optimizer = make_optimizer(model, STEP_CONFIG)
    scheduler = make_scheduler(optimizer, STEP_CONFIG, steps_per_epoch=STEPS_IN_THE_RUN)
    criterion = nn.CrossEntropyLoss(label_smoothing=STEP_CONFIG.label_smoothing)
    run, events = StepRun(), []
    next(model.parameters()).register_hook(lambda grad: events.append("backward"))
    optimizer.register_step_post_hook(lambda *_: events.append("step"))
    with warnings.catch_warnings():  # a mistake's own words replace PyTorch's warning about the order
        warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before")
        for number, (images, labels) in enumerate(case.batches, 1):
            model.eval()
            events.clear()
            args = (model, images.clone(), labels.clone(), optimizer, scheduler, criterion)
            if call is not None:
                answer = call(number, step, *args)
                if answer is FAILED:
                    return None
            else:
                try:
                    answer = step(*args)
                except RuntimeError as exc:  # e.g. backward after the optimiser changed the weights in place
                    run.raised = (number, _gist(exc))
                    return run
            run.states.append(_state(model))
            run.lrs.append(optimizer.param_groups[0]["lr"])
            run.answers.append(answer)
            run.events.append(tuple(events))
    return run


def _simulator(case):
    """simulate(order): the run of ``scripted_step(order)`` from the case's start, each order run once."""
    runs = {}

    def simulate(order):
        if order not in runs:
            runs[order] = _run_steps(scripted_step(order), case)
        return runs[order]
    return simulate


def _without_schedule(order):
    return tuple(operation for operation in order if operation != "schedule")


def _learner_call(result, simulate):
    """How the learner's step is called: through call_learner, so that what it raises becomes a FAIL
    line; named by the known mistake whose simulated run raises the same at the same step (with or
    without the scheduler's step), else function-raises."""
    def known(number, exc):
        mistakes = STEP_MISTAKES + [dataclasses.replace(m, output=_without_schedule(m.output)) for m in STEP_MISTAKES]
        return next((m for m in mistakes if simulate(m.output).raised == (number, _gist(exc))), None)

    def call(number, step, *args):
        def explain(exc):
            mistake = known(number, exc)
            return f"{': '.join(_gist(exc))}. {mistake.explanation}" if mistake else _in_words(exc)
        return call_learner(result, f"step {number}", step, *args, explain=explain,
                            mistake=lambda exc: getattr(known(number, exc), "id", "function-raises"))
    return call


def _as_number(answer):
    if isinstance(answer, float):
        return answer
    if isinstance(answer, torch.Tensor) and answer.numel() == 1:
        return answer.item()
    return None


def _shown(values):
    return ", ".join(f"{value:.4g}" for value in values)


def _check_answers(result, run):
    wrong = [answer for answer in run.answers if not isinstance(answer, float)]
    if not wrong:
        result.ok("returns the loss as a Python float")
    elif isinstance(wrong[0], torch.Tensor):
        result.fail("returned-a-tensor", "it returned the loss as a tensor; the exercise asks for a Python float. "
                    "The loss tensor still holds the graph of the step, so keeping it (in a list of losses, say) "
                    "keeps the step's activations in memory: turn it into a plain Python number")
    else:
        what = "None (does the function end with a return?)" if wrong[0] is None else type(wrong[0]).__name__
        result.fail("no-float-returned", f"it returned {what}; return the loss of the step as a Python float")


def _schedule_of(run, simulate):
    """The order whose learning rates the learner's are: the reference's, a known mistake's (with the
    mistake), or (None, None). The check of the weights compares with that order."""
    if same_values(run.learning_rates, simulate(REFERENCE_ORDER).learning_rates):
        return REFERENCE_ORDER, None
    mistake = matching_mistake(run.learning_rates, SCHEDULE_MISTAKES, lambda m: simulate(m.output).learning_rates)
    return (None, None) if mistake is None else (mistake.output, mistake)


def _check_the_schedule(result, run, simulate, baseline, mistake):
    expected = _shown(simulate(REFERENCE_ORDER).lrs)
    got = f"the learning rate was {_shown(run.lrs)} after the {TRAIN_STEPS} steps; the schedule gives {expected}"
    if baseline == REFERENCE_ORDER:
        result.ok(f"the learning rate after each step is {expected}, as the schedule says")
    elif mistake is not None:
        result.fail(mistake.id, f"{got}: {mistake.explanation}")
    else:
        result.fail("lr-differs", f"{got}. The schedule should move on exactly once per training step")


def _mistakes_with_schedule_of(baseline):
    """The step mistakes, with the learner's way of stepping the scheduler (``baseline`` is the order
    the learner's rates came from), so that a second mistake is named too."""
    if "schedule" in baseline:
        return STEP_MISTAKES
    mistakes = [dataclasses.replace(m, output=_without_schedule(m.output)) for m in STEP_MISTAKES]
    return [m for m in mistakes if m.output != baseline]


def _matching_step_mistake(run, mistakes, simulate):
    """The known mistake whose simulated run leaves the learner's weights and statistics: first among
    those whose backward and optimiser step ran in the learner's order, then among all."""
    same_order = [m for m in mistakes if simulate(m.output).events == run.events]
    for candidates in (same_order, mistakes):
        mistake = matching_mistake(run.trajectory, candidates, lambda m: simulate(m.output).trajectory)
        if mistake is not None:
            return mistake
    return None


def _check_the_step(result, run, simulate, baseline):
    """Weights and BatchNorm statistics after each step, then the returned losses."""
    expected = simulate(baseline or REFERENCE_ORDER)
    if not same_values(run.trajectory, expected.trajectory):
        mistake = _matching_step_mistake(run, _mistakes_with_schedule_of(baseline or REFERENCE_ORDER), simulate)
        if mistake is not None:
            result.fail(mistake.id, mistake.explanation)
            return
        first = next(k for k, (got, want) in enumerate(zip(run.states, expected.states), 1)
                     if not same_values(got, want))
        also = " (the learning rate differs too: see its line)" if baseline is None else ""
        result.fail("weights-differ", f"from step {first} on, the weights or the BatchNorm running statistics "
                    f"differ from the reference's{also}, in a way the checker does not know. Compare your step "
                    "with the order of section 2: training mode, forward, loss, clear the old gradients, "
                    "backward, optimiser step, scheduler step; all in fp32, with no autocast and no scaler")
        return
    with_rates = "" if baseline == REFERENCE_ORDER else " (with your learning rates)"
    result.ok(f"after each of the {TRAIN_STEPS} steps the weights and the BatchNorm running statistics equal the "
              f"reference's{with_rates}")
    losses = [_as_number(answer) for answer in run.answers]
    if None in losses:
        return
    if same_values(torch.tensor(losses, dtype=torch.float64), torch.tensor(expected.answers, dtype=torch.float64)):
        result.ok(f"the returned losses {_shown(losses)} are the losses the steps trained on")
    else:
        result.fail("wrong-loss-returned", f"the weights are right, but the returned values {_shown(losses)} are "
                    f"not the losses the steps trained on ({_shown(expected.answers)}): return the loss that "
                    "the step computed and called backward on")


def check_train_step(candidate):
    """``candidate(model, images, labels, optimizer, scheduler, criterion) -> float``: one fp32 training step
    (training mode, forward, loss, clear the old gradients, backward, optimiser step, scheduler step)
    that returns the loss, compared with the reference over three steps on a tiny ResNet.

    The learner's step and the reference's each run three steps on their own copy of the same model,
    with the course's optimiser and schedule; before each step the model is put in eval mode, as an
    evaluation leaves it, so a step that does not switch to training mode shows. After each step the
    weights, the BatchNorm running statistics, the learning rate and the returned loss are compared;
    where they differ, the known mistake whose simulated run gives the same is named.
    """
    name = getattr(candidate, "__name__", "your step")
    title = (f"Checking {name} for {TRAIN_STEPS} steps on a tiny ResNet with the course's SGD and schedule "
             "(the model handed over in eval mode each time):")
    with checking("train_step", title, TRAIN_STEP_MISTAKES) as result, reporting_crashes(result), _one_thread():
        case = _step_case()
        simulate = _simulator(case)
        run = _run_steps(candidate, case, call=_learner_call(result, simulate))
        if run is None:
            return result
        _check_answers(result, run)
        baseline, schedule_mistake = _schedule_of(run, simulate)
        _check_the_step(result, run, simulate, baseline)
        _check_the_schedule(result, run, simulate, baseline, schedule_mistake)
    return result


# every id this module reports
MISTAKE_IDS = catalogue(DECAY_MISTAKES, CALL_MISTAKES, ACCURACY_CALL_MISTAKES, ACCURACY_MISTAKES, FLIP_CALL_MISTAKES,
                        FLIP_MISTAKES, TRAIN_STEP_MISTAKES)
