"""The hardware a run uses: which device, which arithmetic, and a readable name for both.

* :func:`choose_device` - CUDA, then Apple's MPS, then the CPU; ``$RESNET_EDU_DEVICE`` overrides it
  (the test suite sets ``cpu`` so that the notebooks' stored outputs compare on any machine).
* :func:`choose_precision` - bf16 autocast on GPUs with compute capability 8.0+ and on CPUs with
  native bf16 instructions, fp16 with a gradient scaler on older GPUs, fp32 otherwise (and on MPS).
* :func:`autocast` - the context that runs convolutions in that precision.
* :func:`configure` - the backend switches a fast GPU run wants (cuDNN's autotuner).
* :func:`synchronize`, :func:`device_name`.
"""

import contextlib
import os
import platform
from pathlib import Path

import torch

ENV_DEVICE = "RESNET_EDU_DEVICE"


def mps_available():
    backend = getattr(torch.backends, "mps", None)
    return backend is not None and backend.is_available()


def choose_device(requested=None):
    """``requested`` if given, else ``$RESNET_EDU_DEVICE``, else cuda, mps or cpu, the first present."""
    requested = requested or os.environ.get(ENV_DEVICE) or None
    if requested is not None:
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {requested!r} was asked for, but PyTorch sees no CUDA GPU here "
                             f"(torch {torch.__version__}). Use device='cpu', or install a CUDA build of torch.")
        if device.type == "mps" and not mps_available():
            raise ValueError(f"device {requested!r} was asked for, but Apple's MPS backend is not available "
                             f"here. Use device='cpu'.")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def cpu_kernels():
    """The instruction set PyTorch's CPU kernels use here: "AVX512", "AVX2", ... (``$ATEN_CPU_CAPABILITY``
    can lower it, which imitates an older processor on a newer one)."""
    backend = getattr(torch.backends, "cpu", None)
    return backend.get_cpu_capability() if backend is not None else "unknown"


def cpu_has_native_bf16():
    """True where the processor has bf16 instructions (AVX512-BF16 or AMX), read from /proc/cpuinfo,
    and PyTorch uses its AVX512 kernels (not lowered to AVX2 by ``$ATEN_CPU_CAPABILITY``).

    Elsewhere oneDNN may still run bf16, but emulated, which is slower than fp32. Measured on this
    project's 2-core Xeon (AVX512-BF16, no AMX): a bf16 training step of ResNet18 (ImageNet stem) runs
    at about 0.85x the speed of fp32 (the speed ladder in benchmarks/results/), yet the quick recipe,
    tuned in bf16, reached 68.2% in bf16 against 62.4% in fp32 (seed 0, two epochs), so bf16 stays.
    """
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return (" avx512_bf16" in flags or " amx_bf16" in flags) and cpu_kernels().startswith("AVX512")


def choose_precision(device, requested="auto"):
    """The arithmetic for training on ``device``: "bf16", "fp16" or "fp32" (see the module doc)."""
    device = torch.device(device)
    if requested != "auto":
        if requested == "fp16" and device.type == "cpu":
            raise ValueError("fp16 training needs a GPU; on a CPU use precision='bf16' or 'fp32'")
        return requested
    if device.type == "cuda":
        major, _ = torch.cuda.get_device_capability(device)
        return "bf16" if major >= 8 else "fp16"
    if device.type == "cpu" and cpu_has_native_bf16():
        return "bf16"
    return "fp32"  # MPS: autocast there is young; fp32 is the safe default


def precision_label(device, precision):
    """``precision`` as it really runs: fp32 convolutions use TF32 tensor cores on Ampere and newer
    GPUs unless ``torch.backends.cudnn.allow_tf32`` is switched off (it is on by default)."""
    device = torch.device(device)
    if precision == "fp32" and device.type == "cuda" and torch.backends.cudnn.allow_tf32 \
            and torch.cuda.get_device_capability(device)[0] >= 8:
        return "fp32 (TF32 convolutions)"
    return precision


def autocast(device, precision):
    """A context in which matmuls and convolutions run in ``precision`` (fp32 leaves them alone)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def configure(device):
    """Backend switches for speed: on CUDA, let cuDNN time its convolution algorithms once per input
    shape and keep the fastest (our shapes never change within a run). It makes GPU runs repeat only
    to rounding, not bit for bit; CPU runs stay bit-exact."""
    if torch.device(device).type == "cuda":
        torch.backends.cudnn.benchmark = True


def synchronize(device):
    """Wait until the device has finished its queued work (for honest timings)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def device_name(device):
    """A readable name for the hardware: the GPU's name, or the CPU's model, the instruction set
    PyTorch's kernels use (with "+bf16" where the processor has native bf16) and the thread count."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return f"Apple GPU (MPS), {platform.machine()}"
    threads = torch.get_num_threads()
    kernels = cpu_kernels() + ("+bf16" if cpu_has_native_bf16() else "")
    return f"CPU ({cpu_model()}, {kernels}, {threads} thread{'s' if threads != 1 else ''})"


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
