"""resnet_edu.runtime: the device a learner's machine gets, with the availability checks patched
(this machine has neither a CUDA GPU nor Apple's MPS), and the precision it trains in."""

import pytest
import torch

from resnet_edu import runtime
from resnet_edu.runtime import choose_device, choose_precision, precision_label


@pytest.fixture
def machine(monkeypatch):
    """Pretend to be a machine with the accelerators named: machine(cuda=True), machine(mps=True)."""
    monkeypatch.delenv(runtime.ENV_DEVICE, raising=False)

    def pretend(cuda=False, mps=False):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(runtime, "mps_available", lambda: mps)
    return pretend


@pytest.mark.parametrize("cuda, mps, expected", [
    (True, True, "cuda"),    # a Linux or Windows machine with an NVIDIA GPU, Colab's GPU runtime
    (False, True, "mps"),    # an Apple-silicon Mac
    (False, False, "cpu"),   # any other laptop
])
def test_the_device_is_cuda_then_mps_then_cpu(machine, cuda, mps, expected):
    machine(cuda=cuda, mps=mps)
    assert choose_device() == torch.device(expected)


def test_the_environment_or_the_caller_can_insist_on_a_device(machine, monkeypatch):
    machine(cuda=True, mps=True)
    monkeypatch.setenv(runtime.ENV_DEVICE, "cpu")  # what the test suite sets for the notebooks
    assert choose_device() == torch.device("cpu")
    assert choose_device("mps") == torch.device("mps")  # an explicit request beats the environment


def test_asking_for_an_absent_accelerator_says_what_to_do(machine):
    machine(cuda=False, mps=False)
    with pytest.raises(ValueError, match=r"'cuda' was asked for, but PyTorch sees no CUDA GPU.*device='cpu'"):
        choose_device("cuda")
    with pytest.raises(ValueError, match="MPS backend is not available here"):
        choose_device("mps")


def test_precision_on_each_kind_of_device(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: True)
    assert choose_precision("cpu") == "bf16"
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: False)
    assert choose_precision("cpu") == "fp32"
    assert choose_precision("mps") == "fp32"
    for capability, expected in (((7, 5), "fp16"), ((8, 0), "bf16"), ((9, 0), "bf16")):  # T4, A100, H100
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device, c=capability: c)
        assert choose_precision("cuda") == expected
    assert choose_precision("cpu", "fp32") == "fp32"
    with pytest.raises(ValueError, match="fp16 training needs a GPU"):
        choose_precision("cpu", "fp16")


def test_fp32_on_an_ampere_or_newer_gpu_is_labelled_tf32(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device: (9, 0))
    assert precision_label("cuda", "fp32") == "fp32 (TF32 convolutions)"
    assert precision_label("cuda", "bf16") == "bf16"
    assert precision_label("cpu", "fp32") == "fp32"
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device: (7, 5))  # a T4 has no TF32
    assert precision_label("cuda", "fp32") == "fp32"


def test_lowering_the_cpu_kernels_to_avx2_turns_native_bf16_off(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_kernels", lambda: "AVX2")
    assert not runtime.cpu_has_native_bf16()
    assert "AVX2" in runtime.device_name("cpu") and "+bf16" not in runtime.device_name("cpu")
