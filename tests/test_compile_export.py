"""The models trace as one graph under torch.compile and torch.export, with unchanged outputs."""

import torch

from resnet_edu.resnet import build


def test_torch_compile_full_graph():
    model = build("resnet18", stem="cifar", num_classes=10).eval()
    x = torch.randn(2, 3, 32, 32)
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)  # fails on any graph break
    torch.testing.assert_close(compiled(x), model(x))


def test_torch_compile_training_step():
    model = build("resnet18", stem="cifar", num_classes=10).train()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    compiled(torch.randn(4, 3, 32, 32)).sum().backward()
    assert model.conv1.weight.grad is not None


def test_torch_export():
    model = build("resnet50", num_classes=10).eval()
    x = torch.randn(2, 3, 64, 64)
    exported = torch.export.export(model, (x,))
    torch.testing.assert_close(exported.module()(x), model(x))
