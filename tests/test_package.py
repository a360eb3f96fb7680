"""The package's front door: the models import from the top, as torchvision.models has them, and
importing the package loads no plotting or data code."""

import subprocess
import sys

import resnet_edu


def test_the_public_names_import_from_the_top():
    for name in resnet_edu.__all__:
        assert hasattr(resnet_edu, name), name
    model = resnet_edu.resnet18()
    assert sum(p.numel() for p in model.parameters()) == 11_689_512  # torchvision's count
    assert isinstance(model, resnet_edu.ResNet) and isinstance(model.layer1[0], resnet_edu.BasicBlock)
    assert resnet_edu.__version__.count(".") >= 1 or resnet_edu.__version__ == "0+unknown"


def test_importing_the_package_stays_light():
    code = "import sys, resnet_edu; print(sorted(m for m in ('matplotlib', 'resnet_edu.data', 'resnet_edu.train', " \
           "'torchvision') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
