"""The exercise checkers of notebooks 01 to 05, and show_solution, which prints a reference solution."""

from .bottleneck import check_bottleneck
from .engine import show_solution
from .four_stages import check_stage
from .identity_and_conv_blocks import check_downsample
from .residual_block import check_basic_block
from .training import check_decay_groups, check_per_class_accuracy, check_random_flip

__all__ = ["check_basic_block", "check_downsample", "check_stage", "check_bottleneck", "check_decay_groups",
           "check_per_class_accuracy", "check_random_flip", "show_solution"]
