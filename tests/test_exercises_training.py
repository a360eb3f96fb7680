"""Notebook 05's exercise checkers: the solutions pass, each typical mistake gets its own words."""

import subprocess
import sys

import pytest
import torch
from torch import nn

from _checker_results import assert_passes, mistakes

from resnet_edu.exercises import (check_decay_groups, check_per_class_accuracy, check_random_flip, check_train_step,
                                  show_solution, training)
from resnet_edu.exercises.engine import solution_source
from resnet_edu.exercises.solutions.decay_groups import split_decay_groups
from resnet_edu.exercises.solutions.per_class_accuracy import my_per_class_accuracy
from resnet_edu.exercises.solutions.random_flip import my_random_flip
from resnet_edu.exercises.solutions.train_step import my_train_step


def test_decay_groups_solution_passes(capsys):
    assert_passes(check_decay_groups(split_decay_groups))


def test_per_class_accuracy_solution_passes(capsys):
    assert_passes(check_per_class_accuracy(my_per_class_accuracy))


def test_random_flip_solution_passes(capsys):
    assert_passes(check_random_flip(my_random_flip))


def test_decay_mistakes_are_named():
    assert mistakes(check_decay_groups(lambda model: (list(model.parameters()), []))) == ["decay-on-bn-or-bias"]
    only_convs = check_decay_groups(lambda model: ([p for p in model.parameters() if p.ndim == 4], []))
    assert mistakes(only_convs) == ["parameter-in-no-group", "no-decay-on-weights"]  # fc.weight too
    both = check_decay_groups(lambda model: (list(model.parameters()), list(model.parameters())))
    assert mistakes(both)[0] == "parameter-in-both-groups"
    assert mistakes(check_decay_groups(lambda model: ([], list(model.parameters())))) == ["no-decay-on-weights"]
    assert mistakes(check_decay_groups(lambda model: None)) == ["not-two-groups"]


def test_per_class_mistakes_are_named(capsys):
    assert mistakes(check_per_class_accuracy(lambda m: m.diagonal())) == ["counts-not-fractions"]
    assert "divide" not in capsys.readouterr().out  # a nudge only
    assert mistakes(check_per_class_accuracy(lambda m: m.diagonal() / m.sum(0))) == ["divided-by-column-sums"]
    assert mistakes(check_per_class_accuracy(lambda m: m.diagonal() / m.sum())) == ["divided-by-the-total"]
    assert mistakes(check_per_class_accuracy(lambda m: m.diagonal() // m.sum(1))) == ["integer-division"]


def test_random_flip_that_changes_its_input_or_its_dtype_is_named(capsys):
    def in_place(images, flip):
        images[flip] = images[flip].flip(3)
        return images

    assert mistakes(check_random_flip(in_place)) == ["changes-its-input"]
    assert mistakes(check_random_flip(lambda images, flip: my_random_flip(images, flip).float())) == ["wrong-dtype"]


def test_random_flip_that_ignores_the_flip_pattern_is_named(capsys):
    def by_position(images, flip):
        out = images.clone()
        out[::2] = out[::2].flip(3)
        return out

    assert mistakes(check_random_flip(by_position)) == ["ignores-flip"]
    assert mistakes(check_per_class_accuracy(lambda m: 1 / 0)) == ["function-raises"]
    assert mistakes(check_per_class_accuracy(lambda m: m[0])) == ["outputs-differ"]


@pytest.mark.parametrize("answer,mistake", [(None, "returned-none"), ({"cat": 0.8}, "not-numbers"),
                                            ("0.8 0.6 0.73", "not-numbers")])
def test_per_class_answers_that_are_not_numbers_are_named_not_raised(answer, mistake, capsys):
    result = check_per_class_accuracy(lambda matrix: answer)
    assert not result
    assert mistakes(result) == [mistake]


def test_a_flip_pattern_not_shaped_to_broadcast_is_named(capsys):
    unshaped = check_random_flip(lambda images, flip: torch.where(flip, images.flip(3), images))
    assert mistakes(unshaped) == ["flip-not-broadcast"]
    assert mistakes(check_random_flip(lambda images, flip: images.flip(3) * flip + images * ~flip)) == \
        ["flip-not-broadcast"]


def test_flip_mistakes_are_named():
    assert mistakes(check_random_flip(lambda images, flip: images)) == ["nothing-flipped"]
    upside_down = check_random_flip(lambda images, flip: torch.where(flip.view(-1, 1, 1, 1), images.flip(2), images))
    assert mistakes(upside_down) == ["flipped-upside-down"]
    assert mistakes(check_random_flip(lambda images, flip: images.flip(3))) == ["flipped-every-image"]
    wrong_ones = check_random_flip(lambda images, flip: torch.where(flip.view(-1, 1, 1, 1), images, images.flip(3)))
    assert mistakes(wrong_ones) == ["flipped-the-wrong-images"]
    assert mistakes(check_random_flip(lambda images, flip: images[:2])) == ["wrong-output-shape"]


def test_a_fresh_notebook_shows_a_solution_and_runs_none():
    # what a notebook's first cells do: nothing but the file is printed, no worked answer runs on import
    code = "from resnet_edu.exercises import show_solution; show_solution('decay_groups')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out == solution_source("decay_groups")
    assert "def split_decay_groups(model):" in out


# ---------------------------------------------------------------------------------------- one training step


def test_train_step_solution_passes(capsys):
    out = assert_passes(check_train_step(my_train_step), capsys)
    assert "Checking my_train_step for 3 steps" in out


# float(loss) is a correct answer; PyTorch warns about it because the tensor still requires grad
@pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad=True to a scalar")
def test_train_step_correct_in_other_styles_passes(capsys):
    def cleared_first(model, images, labels, optimizer, scheduler, criterion):
        optimizer.zero_grad()  # at the start of the step
        model.train()
        loss = criterion(model(images), labels)
        loss.backward()
        optimizer.step()
        scheduler.step()
        return float(loss)

    def zeros_not_none(model, images, labels, optimizer, scheduler, criterion):
        model.train()
        loss = criterion(model(images), labels)
        optimizer.zero_grad(set_to_none=False)
        loss.backward()
        optimizer.step()
        scheduler.step()
        return loss.item()

    def cleared_last(model, images, labels, optimizer, scheduler, criterion):
        model.train()
        loss = criterion(model(images), labels)
        loss.backward()
        optimizer.step()
        scheduler.step()
        model.zero_grad(set_to_none=False)  # the model's zero_grad, after the step: the next step starts clean
        return loss.detach().item()

    for step in (cleared_first, zeros_not_none, cleared_last):
        assert_passes(check_train_step(step))


def starter(model, images, labels, optimizer, scheduler, criterion):  # the notebook's starter
    model.train()
    loss = criterion(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss.item()


def test_the_starter_is_told_both_its_mistakes(capsys):
    assert mistakes(check_train_step(starter)) == ["gradients-never-cleared", "scheduler-not-stepped"]
    assert "zero_grad" not in capsys.readouterr().out  # a hint, not the answer


def test_gradients_never_cleared_agree_after_step_1_and_differ_from_step_2():
    # the checker's simulation of the mistake: .grad is empty before step 1, so step 1 alone is right
    with torch.random.fork_rng(devices=[]):
        simulate = training._simulator(training._step_case())
        reference = simulate(training.REFERENCE_ORDER)
        piled_up = simulate(("train", "forward", "backward", "step", "schedule"))
    same = [torch.allclose(a, b, rtol=1e-4, atol=1e-5) for a, b in zip(piled_up.states, reference.states)]
    assert same == [True, False, False]


def test_the_model_is_handed_over_in_eval_mode_and_the_threads_restored(capsys):
    modes, threads = [], torch.get_num_threads()

    def records_the_mode(model, images, labels, optimizer, scheduler, criterion):
        modes.append(model.training)
        return my_train_step(model, images, labels, optimizer, scheduler, criterion)

    assert_passes(check_train_step(records_the_mode))
    assert modes == [False, False, False]
    assert torch.get_num_threads() == threads


def test_train_step_mistakes_are_named(capsys):
    def no_train_mode(model, images, labels, optimizer, scheduler, criterion):
        loss = criterion(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        return loss.item()

    def no_optimizer_step(model, images, labels, optimizer, scheduler, criterion):
        model.train()
        loss = criterion(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        scheduler.step()
        return loss.item()

    def no_backward(model, images, labels, optimizer, scheduler, criterion):
        model.train()
        loss = criterion(model(images), labels)
        optimizer.zero_grad()
        optimizer.step()
        scheduler.step()
        return loss.item()

    def scheduler_first(model, images, labels, optimizer, scheduler, criterion):
        model.train()
        loss = criterion(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        scheduler.step()
        optimizer.step()
        return loss.item()

    def cleared_after_backward(model, images, labels, optimizer, scheduler, criterion):
        model.train()
        loss = criterion(model(images), labels)
        loss.backward()
        optimizer.zero_grad()
        optimizer.step()
        scheduler.step()
        return loss.item()

    def no_scheduler_step(model, images, labels, optimizer, scheduler, criterion):
        model.train()
        loss = criterion(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    assert mistakes(check_train_step(no_train_mode)) == ["model-in-eval-mode"]
    assert mistakes(check_train_step(no_optimizer_step)) == ["optimizer-step-missing"]
    assert mistakes(check_train_step(no_backward)) == ["backward-missing"]
    assert mistakes(check_train_step(scheduler_first)) == ["scheduler-before-optimizer"]
    assert mistakes(check_train_step(cleared_after_backward)) == ["cleared-after-backward"]
    assert mistakes(check_train_step(no_scheduler_step)) == ["scheduler-not-stepped"]


def test_a_loss_of_the_learners_own_and_a_second_forward_pass_are_named(capsys):
    def own_loss_function(model, images, labels, optimizer, scheduler, criterion):
        model.train()
        loss = nn.CrossEntropyLoss()(model(images), labels)  # the criterion handed over smooths its labels
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        return loss.item()

    def own_smoothed_loss(model, images, labels, optimizer, scheduler, criterion):  # the same loss: right
        model.train()
        loss = nn.CrossEntropyLoss(label_smoothing=0.1)(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        return loss.item()

    accuracies = []

    def outputs_computed_twice(model, images, labels, optimizer, scheduler, criterion):
        model.train()
        accuracies.append((model(images).argmax(1) == labels).float().mean().item())  # one forward pass
        loss = criterion(model(images), labels)  # and a second one, in training mode too
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        return loss.item()

    def accuracy_after_the_step(model, images, labels, optimizer, scheduler, criterion):
        model.train()
        loss = criterion(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():  # no gradients, but a training-mode forward pass all the same
            accuracies.append((model(images).argmax(1) == labels).float().mean().item())
        scheduler.step()
        return loss.item()

    assert mistakes(check_train_step(own_loss_function)) == ["own-loss-function"]
    assert_passes(check_train_step(own_smoothed_loss))
    assert mistakes(check_train_step(outputs_computed_twice)) == ["two-forward-passes"]
    assert mistakes(check_train_step(accuracy_after_the_step)) == ["two-forward-passes"]
    out = capsys.readouterr().out
    assert "label smoothing 0.1" in out and "How many times" in out


def test_a_step_before_backward_is_named_whether_it_changes_nothing_or_raises(capsys):
    def step_on_cleared_gradients(model, images, labels, optimizer, scheduler, criterion):
        model.train()
        optimizer.zero_grad(set_to_none=True)
        loss = criterion(model(images), labels)
        optimizer.step()  # nothing to apply: every step leaves the weights as they were
        loss.backward()
        scheduler.step()
        return loss.item()

    def step_on_stale_gradients(model, images, labels, optimizer, scheduler, criterion):
        model.train()
        loss = criterion(model(images), labels)
        optimizer.step()  # the last step's gradients; step 2 changes the weights backward still needs
        optimizer.zero_grad()
        loss.backward()
        scheduler.step()
        return loss.item()

    assert mistakes(check_train_step(step_on_cleared_gradients)) == ["step-before-backward"]
    assert mistakes(check_train_step(step_on_stale_gradients)) == ["step-before-backward"]
    assert "step 2 raised RuntimeError" in capsys.readouterr().out


def test_train_step_answers_that_are_not_floats_are_named(capsys):
    def returns_the_tensor(model, images, labels, optimizer, scheduler, criterion):
        model.train()
        loss = criterion(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        return loss

    def returns_nothing(model, images, labels, optimizer, scheduler, criterion):
        returns_the_tensor(model, images, labels, optimizer, scheduler, criterion)

    assert mistakes(check_train_step(returns_the_tensor)) == ["returned-a-tensor"]  # the training itself is right
    assert mistakes(check_train_step(returns_nothing)) == ["no-float-returned"]
    assert mistakes(check_train_step(lambda *args: my_train_step(*args) * 2)) == ["wrong-loss-returned"]


def test_a_train_step_that_raises_or_does_something_unknown_is_named(capsys):
    assert mistakes(check_train_step(lambda *args: 1 / 0)) == ["function-raises"]

    def steps_the_scheduler_twice(*args):
        loss = my_train_step(*args)
        args[4].step()
        return loss

    assert mistakes(check_train_step(steps_the_scheduler_twice)) == ["weights-differ", "lr-differs"]


def test_show_solution_prints_the_train_step(capsys):
    show_solution("train_step")
    assert "def my_train_step(model, images, labels, optimizer, scheduler, criterion):" in capsys.readouterr().out
