"""The models trace as one graph under torch.compile and torch.export, with unchanged outputs."""

import copy

import pytest
import torch

from resnet_edu.resnet import build

pytestmark = pytest.mark.slow  # torch.compile and torch.export: tens of seconds; CI runs it (pytest -m slow)


def test_torch_compile_full_graph():
    model = build("resnet18", stem="cifar", num_classes=10).eval()
    x = torch.randn(2, 3, 32, 32)
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)  # fails on any graph break
    torch.testing.assert_close(compiled(x), model(x))


def test_torch_compile_training_step_gives_the_eager_gradients():
    """A training step through the compiled graph gives every parameter the gradient eager mode gives,
    to float32 rounding (atol 1e-5, rtol 1e-4: the graph may order sums differently)."""
    torch.manual_seed(0)
    eager = build("resnet18", stem="cifar", num_classes=10).train()
    twin = copy.deepcopy(eager)
    compiled = torch.compile(twin, backend="aot_eager", fullgraph=True)
    x, target = torch.randn(4, 3, 32, 32), torch.tensor([0, 3, 5, 9])
    for model in (eager, compiled):
        torch.nn.functional.cross_entropy(model(x), target).backward()
    for (name, p), q in zip(eager.named_parameters(), twin.parameters()):
        assert q.grad is not None, name
        torch.testing.assert_close(q.grad, p.grad, atol=1e-5, rtol=1e-4, msg=name)
    for (name, b), c in zip(eager.named_buffers(), twin.buffers()):  # BN running statistics, too
        torch.testing.assert_close(c, b, atol=1e-5, rtol=1e-4, msg=name)


def test_torch_export():
    model = build("resnet50", num_classes=10).eval()
    x = torch.randn(2, 3, 64, 64)
    exported = torch.export.export(model, (x,))
    torch.testing.assert_close(exported.module()(x), model(x))
