"""The exercise checkers of the notebooks (one module per notebook), show_solution, which prints a
reference solution, and mistake_catalogue, every mistake a checker can name, by module.

A checker returns a CheckResult and prints its report once: ``bool(result)`` is True when every check
passed, and ``result.mistakes`` lists the stable ids of the mistakes it found (e.g. "bias-before-bn").
"""

from . import (bottleneck, four_stages, identity_and_conv_blocks, residual_block, training, what_resnet_sees,
               why_residuals_work)
from .bottleneck import check_bottleneck, check_resnet50_predictions
from .engine import show_solution
from .four_stages import check_resnet18_predictions, check_resnet_forward, check_stage
from .identity_and_conv_blocks import (check_downsample, check_option_a_resnet50, check_stride_only_shortcut,
                                       check_zero_pad_shortcut)
from .residual_block import check_basic_block, check_width_prediction, check_zero_init_predictions
from .training import check_decay_groups, check_per_class_accuracy, check_random_flip, check_train_step
from .what_resnet_sees import check_grad_cam, check_map_size_predictions
from .why_residuals_work import check_deletion_predictions, check_plain_twin

CHECKER_MODULES = (residual_block, identity_and_conv_blocks, four_stages, bottleneck, training,
                   why_residuals_work, what_resnet_sees)  # notebooks 01 to 07


def mistake_catalogue():
    """{checker module's short name: {mistake id: one-line description}}: every mistake a checker can
    report, in notebook order (what a teacher's guide lists)."""
    return {module.__name__.rsplit(".", 1)[-1]: dict(module.MISTAKE_IDS) for module in CHECKER_MODULES}


__all__ = [
    "check_basic_block", "check_width_prediction", "check_zero_init_predictions",  # notebook 01
    "check_downsample", "check_zero_pad_shortcut", "check_stride_only_shortcut", "check_option_a_resnet50",  # 02
    "check_stage", "check_resnet18_predictions", "check_resnet_forward",  # 03
    "check_bottleneck", "check_resnet50_predictions",  # 04
    "check_decay_groups", "check_per_class_accuracy", "check_random_flip", "check_train_step",  # 05
    "check_plain_twin", "check_deletion_predictions",  # 06
    "check_grad_cam", "check_map_size_predictions",  # 07
    "show_solution", "mistake_catalogue",
]
