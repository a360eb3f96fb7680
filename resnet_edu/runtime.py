"""The hardware a run uses: which device (and, under torchrun, which process), which arithmetic,
and a readable name for both.

* :func:`choose_device` - CUDA, then Apple's MPS, then the CPU; ``$RESNET_EDU_DEVICE`` overrides it
  (the test suite sets ``cpu`` so that the notebooks' stored outputs compare on any machine).
* :func:`choose_precision` - bf16 autocast on GPUs with compute capability 8.0+ and on CPUs with
  native bf16 instructions, fp16 with a gradient scaler on older GPUs, fp32 otherwise (and on MPS).
* :func:`autocast` - the context that runs convolutions in that precision.
* :func:`configure` - the backend switches a fast GPU run wants (cuDNN's autotuner).
* :func:`synchronize`, :func:`device_name`.
* Several processes, one model: ``torchrun --nproc_per_node=N`` starts N copies of the same program
  and tells each its place through environment variables (RANK, LOCAL_RANK, WORLD_SIZE).
  :func:`setup` joins them into a process group; each copy trains on its own shard of every batch,
  DistributedDataParallel averages the gradients, so all copies take the same step and their
  weights stay identical. Without torchrun the helpers here describe a world of one process.
"""

import contextlib
import hashlib
import os
import platform
import time
from pathlib import Path

import torch
import torch.distributed as dist

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

    Elsewhere oneDNN may still run bf16, but emulated, which is slower than fp32. Native bf16 is not
    always faster either (the speed ladders in benchmarks/results/ measure both rungs per machine); it
    is chosen wherever it is native because the quick recipe was tuned in bf16 (notebook 05 compares
    the two precisions' accuracy).
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


# ----------------------------------------------------------------------------- torchrun

def process_count():
    """How many processes torchrun started for this job (its WORLD_SIZE); 1 without torchrun."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def launched_by_torchrun():
    return process_count() > 1


def is_main_process():
    """True for rank 0 of a torchrun job (read from torchrun's RANK, before any process group exists)
    and for a process started without torchrun: the one that prints and writes files."""
    return int(os.environ.get("RANK", "0")) == 0


def setup(device=None):
    """The device of this process, joining torchrun's process group first if torchrun started us;
    returns (device, rank, world_size). Without torchrun: (:func:`choose_device`, 0, 1).

    NCCL talks between GPUs, gloo between CPU processes. Each process takes the GPU named by its
    LOCAL_RANK, and makes it its current device *before* joining, so that NCCL's first collective
    does not open a context on GPU 0 from every process.
    """
    device = choose_device(device)
    if not launched_by_torchrun():
        return device, 0, 1
    if not dist.is_initialized():
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
            dist.init_process_group(backend="nccl", device_id=device)
        else:
            dist.init_process_group(backend="gloo")
    elif device.type == "cuda":
        device = torch.device("cuda", torch.cuda.current_device())
    return device, dist.get_rank(), dist.get_world_size()


def teardown():
    if dist.is_initialized():
        dist.destroy_process_group()


def sum_across_ranks(values, device):
    """Add numbers (plain or 0-d tensors) over all ranks, each of which counted its own shard; returns
    floats (alone, the numbers themselves)."""
    values = [float(v) for v in values]  # waits for the device: call it once per epoch, not per step
    if not dist.is_initialized():
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def any_across_ranks(flag, device):
    """True on every rank if ``flag`` is True on any rank (so all ranks stop together, none hangs)."""
    if not dist.is_initialized():
        return bool(flag)
    tensor = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def sync_buffers(module):
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank.

    DDP averages gradients, so the weights agree; but each rank updates its BatchNorm statistics
    from its own shard during the last step. Evaluating and saving need one agreed set.
    """
    if dist.is_initialized():
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)


def weights_digest(model):
    """A SHA-256 of every parameter and buffer, byte for byte: equal digests mean equal weights."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def digests_across_ranks(model):
    """Every rank's :func:`weights_digest`, in rank order (a list of one without torchrun)."""
    mine = weights_digest(model)
    if not dist.is_initialized():
        return [mine]
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, mine)
    return gathered


def about_this_run(started, device, mixed_precision=True):
    """One line for a notebook's "About this run": the seconds since ``started`` (a
    ``time.perf_counter()`` reading), the hardware, the precision, and the versions.
    Pass ``mixed_precision=False`` from a notebook that computes in fp32 throughout."""
    precision = (f"{choose_precision(device)} precision where mixed precision is used" if mixed_precision
                 else "fp32 throughout")
    return (f"ran top to bottom in {time.perf_counter() - started:.0f} s on {device_name(device)}, "
            f"{precision}; torch {torch.__version__.split('+')[0]}, Python {platform.python_version()}")
