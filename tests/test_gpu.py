"""On a CUDA GPU: what no CPU run can show. Skipped where PyTorch sees no GPU; about a minute on one.

bf16 with torch.compile for an epoch, checkpoint, resume, reload; the device loader and a training
step without a single wait for the GPU; two processes over NCCL where two GPUs exist.
benchmarks/gpu_check.sh runs these first.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from _tiny_cifar import tiny_cifar, write_tiny_tarball

from resnet_edu.checkpoint import load_checkpoint, rng_state, set_rng_state
from resnet_edu.loaders import DeviceLoader
from resnet_edu.runtime import autocast, choose_precision
from resnet_edu.train import build_model, evaluate, fit, make_optimizer, make_scheduler, prepare_model, recipe

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (PyTorch sees none)")
CUDA = torch.device("cuda")


def gpu_config(out_dir, **overrides):
    """The full recipe, compiled, on 4,096 learnable images: seconds per epoch on a GPU."""
    return recipe("full", **dict(dict(epochs=2, device="cuda", compile=True, progress=False, live_plot=False,
                                      out_dir=str(out_dir)), **overrides))


@pytest.fixture(scope="module")
def data():
    return tiny_cifar(train_per_class=1366, test_per_class=342)  # 4,098 training, 1,026 test images


@pytest.fixture(scope="module")
def straight_run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    return fit(build_model(gpu_config(out), num_classes=3), data, gpu_config(out)), out


def test_a_compiled_bf16_epoch_learns_and_compiles_before_the_clock(straight_run):
    history, out = straight_run
    assert json.loads((out / "metrics.json").read_text())["precision"] in ("bf16", "fp16")
    assert history.status == "finished" and history.test_acc[-1] > 0.8  # the colours give the class away (chance: 1/3)
    assert history.warmup_seconds > history.seconds[0]  # compiling took longer than an epoch's training


def test_the_checkpoint_reloads_into_a_plain_model_with_the_same_accuracy(straight_run, data):
    history, out = straight_run
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["rng"]["torch"].device.type == "cpu" and "cuda" in state["rng"]
    config = gpu_config(out, compile=False)
    _, plain = prepare_model(build_model(config, num_classes=3), config, CUDA)
    plain.load_state_dict(state["model"], strict=True)
    loader = DeviceLoader(data.test_images, data.test_labels, 1000, train=False, device=CUDA)
    _, accuracy = evaluate(plain, loader, choose_precision(CUDA), tta=config.tta)
    assert abs(accuracy - history.test_acc[-1]) <= 0.002  # other kernels may round differently


def test_an_interrupted_run_resumes_on_the_gpu(straight_run, data, tmp_path):
    history, _ = straight_run

    def ctrl_c(epoch, _):
        if epoch == 1:
            raise KeyboardInterrupt

    config = gpu_config(tmp_path)
    stopped = fit(build_model(config, num_classes=3), data, config, callback=ctrl_c)
    assert stopped.status == "interrupted"
    resumed = fit(build_model(config, num_classes=3), data, config, resume=True)
    assert resumed.status == "finished" and resumed.epoch == [1, 2]
    assert abs(resumed.test_acc[-1] - history.test_acc[-1]) <= 0.02  # cuDNN's autotuning: equal to rounding


def test_random_states_survive_a_round_trip():
    state = rng_state()
    expected = (torch.rand(2), torch.rand(2, device=CUDA))
    set_rng_state(state)
    assert torch.equal(torch.rand(2), expected[0]) and torch.equal(torch.rand(2, device=CUDA), expected[1])


def test_the_device_loader_and_a_training_step_never_wait_for_the_gpu(data):
    """torch.cuda.set_sync_debug_mode("error") raises at any operation that makes the CPU wait for
    the GPU (a .item(), a tensor built from host values, a copy to the host). The steps below are the
    body of fit's loop between two of its NaN checks (which wait for the GPU on purpose)."""
    loader = DeviceLoader(data.train_images, data.train_labels, 512, train=True, device=CUDA)
    config = recipe("full", device="cuda")
    model, plain = prepare_model(build_model(config, num_classes=3), config, CUDA)
    optimizer = make_optimizer(plain, config)
    scheduler = make_scheduler(optimizer, config, len(loader))
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    precision = choose_precision(CUDA)
    loss_sums = torch.zeros(len(loader), device=CUDA)
    batches = iter(loader)
    first = next(batches)  # an epoch's start copies its order and augmentation draws to the GPU, once
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for step, (images, labels) in enumerate([first, *batches]):
            with autocast(CUDA, precision):
                loss = criterion(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sums[step] = loss.detach() * len(labels)
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_two_gpus_train_in_lock_step(tmp_path):
    torchrun = shutil.which("torchrun") or os.path.join(os.path.dirname(sys.executable), "torchrun")
    out = tmp_path / "run"
    command = [torchrun, "--standalone", "--nproc_per_node=2", "-m", "resnet_edu",
               "--data", str(write_tiny_tarball(tmp_path, train_per_class=128, test_per_class=32)),
               "--epochs", "2", "--batch-size", "64", "--out", str(out), "--no-progress", "--device", "cuda"]
    env = dict(os.environ, RESNET_EDU_CACHE=str(tmp_path / "cache"))
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["ranks_identical"]
