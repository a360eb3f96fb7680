"""pytest's set-up for the whole repository.

The notebooks' stored outputs were made on a CPU. On a machine with a GPU, notebook 05 would pick
the GPU and its full recipe and print other figures, so nbval runs every notebook on the CPU
(resnet_edu.runtime.choose_device reads RESNET_EDU_DEVICE; the kernels inherit it). Tests that
need a GPU ask for it by name (tests/test_gpu.py).
"""

import os

os.environ.setdefault("RESNET_EDU_DEVICE", "cpu")
