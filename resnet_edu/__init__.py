"""resnet_edu: the tested version of what the course's notebooks build.

The models are at the top, as torchvision.models has them: ``from resnet_edu import resnet18``.
Training, data, measurement, pictures and the exercises stay in their modules
(``resnet_edu.train``, ``resnet_edu.data``, ...), loaded when used, so importing the package is light.
"""

from importlib.metadata import PackageNotFoundError, version

from .blocks import BasicBlock, Bottleneck, conv1x1, conv3x3
from .naive import naive_resnet18
from .resnet import ResNet, build, make_stage, resnet18, resnet34, resnet50, resnet101, resnet152
from .runtime import choose_device

try:
    __version__ = version("resnet_edu")
except PackageNotFoundError:  # run from a source tree that pip never installed
    __version__ = "0+unknown"

__all__ = ["ResNet", "BasicBlock", "Bottleneck", "conv1x1", "conv3x3", "resnet18", "resnet34", "resnet50",
           "resnet101", "resnet152", "build", "make_stage", "naive_resnet18", "choose_device", "__version__"]
