"""The exercise checkers of notebooks 01 to 05, and show_solution, which prints a reference solution."""

from .bottleneck import check_bottleneck, check_resnet50_predictions
from .engine import show_solution
from .four_stages import check_resnet18_predictions, check_stage
from .identity_and_conv_blocks import (check_downsample, check_option_a_resnet50, check_stride_only_shortcut,
                                       check_zero_pad_shortcut)
from .residual_block import check_basic_block, check_width_prediction, check_zero_init_predictions
from .training import check_decay_groups, check_per_class_accuracy, check_random_flip

__all__ = [
    "check_basic_block", "check_width_prediction", "check_zero_init_predictions",  # notebook 01
    "check_downsample", "check_zero_pad_shortcut", "check_stride_only_shortcut", "check_option_a_resnet50",  # 02
    "check_stage", "check_resnet18_predictions",  # 03
    "check_bottleneck", "check_resnet50_predictions",  # 04
    "check_decay_groups", "check_per_class_accuracy", "check_random_flip",  # 05
    "show_solution",
]
