"""Several processes, one model: the small pieces of torch.distributed the trainer needs.

``torchrun --nproc_per_node=N`` starts N copies of the same program and tells each its place through
environment variables (RANK, LOCAL_RANK, WORLD_SIZE). Each copy trains on its own shard of every
batch; DistributedDataParallel averages the gradients, so all copies take the same step and their
weights stay identical. Without torchrun every function here describes a world of one process.
"""

import hashlib
import os

import torch
import torch.distributed as dist

from .runtime import choose_device


def launched_by_torchrun():
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device=None):
    """Join the process group if torchrun started us; return (device, rank, world_size).

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


def rank():
    return dist.get_rank() if dist.is_initialized() else 0


def world_size():
    return dist.get_world_size() if dist.is_initialized() else 1


def sum_across_ranks(values, device):
    """Add a list of numbers over all ranks (each rank counted its own shard); alone, the numbers."""
    if not dist.is_initialized():
        return [float(v) for v in values]
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
