"""resnet_edu: the tested version of what the course's notebooks build, with its public names here.

The models are at the top, as ``torchvision.models`` has them: ``from resnet_edu import resnet18``.
So are the names a learner reaches for next (``recipe``, ``fit``, ``load_cifar10``, ``show_solution``,
``count_parameters``, ...), but those load their module only when first used, so that importing the
package stays light (no matplotlib, no data or training code at import time).

The layout, one idea per module:

* models: :mod:`.blocks` (the residual blocks, and the plain block), :mod:`.resnet` (stages, the
  ImageNet networks, the paper's CIFAR-10 family and its plain twins), :mod:`.naive` (a popular
  from-scratch version with its mistakes, for comparison);
* measurement: :mod:`.measure` (parameters, MACs, shapes, torchvision parity), :mod:`.inside`
  (hooks: gradient norms and feature maps; blocks deleted at test time; Grad-CAM);
* exercises: :mod:`.exercises` (the checking engine, one module of checkers per notebook, solutions);
* data: :mod:`.dataset` (finding, decoding and caching CIFAR-10), :mod:`.loaders` (batches);
* training: :mod:`.train` (configuration, optimiser, schedule, the loop, evaluation),
  :mod:`.progress` (what a learner watches), :mod:`.checkpoint`, :mod:`.files` (atomic writes),
  :mod:`.speed` (the speed ladder), :mod:`.cli` (``python -m resnet_edu``);
* runtime: :mod:`.runtime` (device, precision, autocast, torchrun's processes);
* metrics: :mod:`.metrics` (predictions, confusion matrix, per-class accuracy, mistakes);
* pictures: :mod:`.pictures` (diagrams of the architecture, plots of training).
"""

import importlib
from importlib.metadata import PackageNotFoundError, version

from .blocks import BasicBlock, Bottleneck, PlainBlock, conv1x1, conv3x3
from .naive import naive_resnet18
from .resnet import (CifarResNet, ResNet, build, cifar_resnet, make_stage, plain20, plain56, resnet18, resnet20,
                     resnet32, resnet34, resnet44, resnet50, resnet56, resnet101, resnet110, resnet152)
from .runtime import choose_device

try:
    __version__ = version("resnet_edu")
except PackageNotFoundError:  # run from a source tree that pip never installed
    __version__ = "0+unknown"

# Names loaded on first use: {name: the module that defines it}.
_LAZY = {
    "count_parameters": "measure", "count_macs": "measure", "stage_table": "measure",
    "load_cifar10": "dataset", "DeviceLoader": "loaders",
    "TrainConfig": "train", "recipe": "train", "fit": "train", "evaluate": "train",
    "predict": "metrics", "show_solution": "exercises",
    "gradient_norms": "inside", "feature_maps": "inside", "deleted_blocks": "inside", "grad_cam": "inside",
}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'resnet_edu' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)


def __dir__():
    return sorted(__all__)


__all__ = ["ResNet", "BasicBlock", "Bottleneck", "PlainBlock", "conv1x1", "conv3x3", "resnet18", "resnet34",
           "resnet50", "resnet101", "resnet152", "CifarResNet", "cifar_resnet", "resnet20", "resnet32", "resnet44",
           "resnet56", "resnet110", "plain20", "plain56", "build", "make_stage", "naive_resnet18", "choose_device",
           *_LAZY, "__version__"]
