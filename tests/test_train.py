"""resnet_edu.train: precision, optimiser, schedule, checkpoints, exact resume, stopping."""

import json
import math

import pytest
import torch
from _tiny_cifar import tiny_cifar

from resnet_edu.checkpoint import load_checkpoint, save_checkpoint
from resnet_edu.runtime import choose_precision
from resnet_edu.train import (History, NonFiniteLossError, TrainConfig, build_model, fit, lr_factor, make_optimizer,
                              make_scheduler, recipe)


def tiny_config(tmp_path=None, **overrides):
    """ResNet18 with the ImageNet stem (cheap at 32x32) on 48 images: seconds per run on a CPU."""
    settings = dict(stem="imagenet", epochs=3, batch_size=16, lr=0.05, warmup=0.2, progress=False,
                    live_plot=False, device="cpu", eval_batch_size=32,
                    out_dir=str(tmp_path) if tmp_path else None)
    settings.update(overrides)
    return TrainConfig(**settings)


def test_weight_decay_skips_batchnorm_and_biases():
    model = build_model(tiny_config())
    decay, no_decay = make_optimizer(model, tiny_config()).param_groups
    assert decay["weight_decay"] == 5e-4 and no_decay["weight_decay"] == 0
    assert all(p.ndim == 4 for p in decay["params"][:-1]) and decay["params"][-1].shape == (10, 512)  # convs, fc
    bn_and_bias = sum(m.weight.numel() + m.bias.numel() for m in model.modules()
                      if isinstance(m, torch.nn.BatchNorm2d)) + model.fc.bias.numel()
    assert sum(p.numel() for p in no_decay["params"]) == bn_and_bias
    assert decay["nesterov"] and decay["momentum"] == 0.9


def test_schedules_warm_up_then_decay():
    assert lr_factor(0, 100, 10, "onecycle") == pytest.approx(0.1)
    assert lr_factor(10, 100, 10, "onecycle") == 1.0
    assert lr_factor(99, 100, 10, "onecycle") == pytest.approx(0.001)
    assert lr_factor(99, 100, 10, "cosine") == pytest.approx(0.0)
    assert lr_factor(10 + 89 / 2, 100, 10, "cosine") == pytest.approx(0.5)
    config = tiny_config(epochs=2, lr=0.2)
    optimizer = make_optimizer(build_model(config), config)
    scheduler = make_scheduler(optimizer, config, steps_per_epoch=5)
    rates = []
    for _ in range(10):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert max(rates) == pytest.approx(0.2) and rates[0] == pytest.approx(0.02) and rates[-1] == pytest.approx(2e-4)


def test_training_learns_and_the_same_seed_repeats_exactly():
    data = tiny_cifar()
    config = tiny_config(lr=0.02, augment="flip")
    first_model = build_model(config, num_classes=3)
    history = fit(first_model, data, config)
    assert history.status == "finished" and history.epoch == [1, 2, 3]
    assert history.train_loss[-1] < history.train_loss[0]
    second_model = build_model(config, num_classes=3)
    again = fit(second_model, data, config)
    assert again.train_loss == history.train_loss and again.test_acc == history.test_acc
    for a, b in zip(first_model.state_dict().values(), second_model.state_dict().values()):
        assert torch.equal(a, b)


def test_interrupted_then_resumed_equals_uninterrupted(tmp_path):
    """Ctrl-C after epoch 2 keeps that checkpoint; resuming ends with bit-identical weights."""
    data = tiny_cifar()
    straight = build_model(tiny_config(), num_classes=3)
    uninterrupted = fit(straight, data, tiny_config(tmp_path / "straight"))

    def ctrl_c_after_epoch_2(epoch, history):
        if epoch == 2:
            raise KeyboardInterrupt

    config = tiny_config(tmp_path / "stopped")
    stopped = fit(build_model(config, num_classes=3), data, config, callback=ctrl_c_after_epoch_2)
    assert stopped.status == "interrupted" and len(stopped) == 2
    assert load_checkpoint(tmp_path / "stopped" / "checkpoint.pt")["epoch"] == 2

    torch.manual_seed(1234)  # disturb every random state: resume must restore them
    resumed_model = build_model(tiny_config(seed=99), num_classes=3)
    resumed = fit(resumed_model, data, config, resume=True)
    assert resumed.status == "finished" and resumed.epoch == [1, 2, 3]
    for field in ("train_loss", "train_acc", "test_loss", "test_acc", "lr"):
        assert getattr(resumed, field) == getattr(uninterrupted, field), field
    for name, tensor in straight.state_dict().items():
        assert torch.equal(tensor, resumed_model.state_dict()[name]), name


def test_a_non_finite_loss_stops_training_and_names_the_step(tmp_path):
    config = tiny_config(tmp_path)
    model = build_model(config, num_classes=3)
    calls = []

    def poison_third_batch(module, inputs, output):
        calls.append(1)
        return output * math.nan if len(calls) == 3 else output

    model.fc.register_forward_hook(poison_third_batch)
    with pytest.raises(NonFiniteLossError, match=r"loss became nan at epoch 1, step 3 \(checked after step 3\)"):
        fit(model, tiny_cifar(), config)
    assert not (tmp_path / "checkpoint.pt").exists()  # the bad epoch was never saved


def test_checkpoints_are_atomic_and_round_trip(tmp_path):
    path = tmp_path / "deep" / "ckpt.pt"
    save_checkpoint(path, weights=torch.arange(3), epoch=4, history=History(epoch=[1]).as_dict())
    assert [p.name for p in path.parent.iterdir()] == ["ckpt.pt"]  # no temporary file left behind
    state = load_checkpoint(path)
    assert torch.equal(state["weights"], torch.arange(3)) and state["epoch"] == 4
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")


def test_recipes_and_config_checks():
    quick = recipe("quick", epochs=1)
    assert quick.stem == "imagenet" and quick.epochs == 1
    assert recipe("full").stem == "cifar"
    with pytest.raises(ValueError, match="unknown recipe"):
        recipe("fast")
    with pytest.raises(ValueError, match="precision must be one of"):
        TrainConfig(precision="fp8")


def test_the_dataloader_path_trains_too():
    config = tiny_config(epochs=1, loader="dataloader", num_workers=0, channels_last=False, precision="fp32")
    history = fit(build_model(config, num_classes=3), tiny_cifar(), config)
    assert history.status == "finished" and math.isfinite(history.train_loss[0])


def test_random_states_load_on_the_cpu_wherever_the_model_lives(tmp_path):
    """torch.set_rng_state takes only a CPU byte tensor: a checkpoint mapped to the model's device (a
    GPU; here the meta device imitates one) could not be resumed. load_checkpoint maps to the CPU."""
    from resnet_edu.checkpoint import rng_state, set_rng_state

    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, rng=rng_state())
    mapped_away = torch.load(path, map_location="meta", weights_only=True)
    with pytest.raises((TypeError, RuntimeError)):
        set_rng_state(mapped_away["rng"])
    state = load_checkpoint(path)
    assert state["rng"]["torch"].device.type == "cpu" and state["rng"]["torch"].dtype == torch.uint8
    expected = torch.rand(3)
    set_rng_state(state["rng"])
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.slow
def test_a_compiled_run_saves_plain_weights_that_reload_and_compiling_is_timed_apart(tmp_path, monkeypatch):
    """With compile=True the checkpoint holds the plain module's names (no '_orig_mod.' prefix), so a
    fresh, uncompiled model loads it strictly and evaluates to the run's accuracy. The warm-up that
    compiles before the clock starts leaves the run exactly as it would have been."""
    compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model: compile(model, backend="eager"))  # seconds on a CPU
    data = tiny_cifar()
    compiled = fit(build_model(tiny_config(), num_classes=3), data, tiny_config(tmp_path / "c", compile=True))
    eager = fit(build_model(tiny_config(), num_classes=3), data, tiny_config(tmp_path / "e"))
    assert compiled.warmup_seconds > 0 and eager.warmup_seconds == 0
    assert compiled.train_loss == eager.train_loss and compiled.test_acc == eager.test_acc
    weights = load_checkpoint(tmp_path / "c" / "checkpoint.pt")["model"]
    assert not any(name.startswith("_orig_mod.") for name in weights)
    fresh = build_model(tiny_config(seed=5), num_classes=3)
    fresh.load_state_dict(weights, strict=True)
    from resnet_edu.loaders import DeviceLoader
    from resnet_edu.train import evaluate

    loader = DeviceLoader(data.test_images, data.test_labels, 32, train=False)
    assert evaluate(fresh, loader, choose_precision("cpu")) == \
        (compiled.test_loss[-1], compiled.test_acc[-1])


def test_evaluation_and_checkpoints_every_few_epochs(tmp_path):
    written = []
    config = tiny_config(tmp_path, epochs=5, eval_every=2, checkpoint_every=3)

    def note_checkpoint(epoch, history):
        path = tmp_path / "checkpoint.pt"
        written.append(load_checkpoint(path)["epoch"] if path.exists() else None)

    history = fit(build_model(config, num_classes=3), tiny_cifar(), config, callback=note_checkpoint)
    assert [acc is not None for acc in history.test_acc] == [False, True, False, True, True]
    assert written == [None, None, 3, 3, 5]
    assert history.final_test_acc() == history.test_acc[-1]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["test_acc"] == history.test_acc[-1] and metrics["history"]["test_acc"][0] is None


@pytest.mark.parametrize("field, value, message", [
    ("lr", -1.0, "lr must be a positive number"),
    ("epochs", 0, "epochs must be at least 1"),
    ("momentum", 1.0, "momentum must be from 0 up to"),
    ("warmup", 1.5, "warmup must be a fraction"),
    ("augment", "rotate", "augment must be one of"),
    ("eval_every", 0, "eval_every must be at least 1"),
])
def test_each_config_mistake_is_named(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value})


def test_training_makes_no_float64_tensor_which_apples_mps_lacks():
    """Apple's GPU (MPS) has no float64: one such tensor on the device and a Mac's run would stop."""
    from torch.overrides import TorchFunctionMode

    class Float64Watch(TorchFunctionMode):
        made = []

        def __torch_function__(self, func, types, args=(), kwargs=None):
            result = func(*args, **(kwargs or {}))
            if isinstance(result, torch.Tensor) and result.dtype == torch.float64:
                self.made.append(getattr(func, "__name__", str(func)))
            return result

    config = tiny_config(epochs=1)
    model = build_model(config, num_classes=3)
    with Float64Watch() as watch:
        history = fit(model, tiny_cifar(), config)
    assert history.status == "finished" and watch.made == []


def test_an_epochs_progress_bar_redraws_a_bounded_number_of_times(capsys):
    """In Jupyter each redraw is a message; nbval's client keeps about 1,000 unread ones, so a long
    epoch on a slow CPU must not send thousands (notebook 05 lost its last output that way)."""
    from types import SimpleNamespace

    from resnet_edu.progress import BAR_UPDATES, Reporter

    reporter = Reporter(SimpleNamespace(progress=True, live_plot=False, epochs=1, model="m", stem="s"), "fp32")
    reporter.start_epoch(0, steps=10_000)
    redraws = 0
    reporter.bar.mininterval = 0  # as if every step took long: only miniters limits the redraws
    display = reporter.bar.display

    def counted(*args, **kwargs):
        nonlocal redraws
        redraws += 1
        return display(*args, **kwargs)

    reporter.bar.display = counted
    for _ in range(10_000):
        reporter.step()
    reporter.close()
    assert redraws <= BAR_UPDATES + 2
