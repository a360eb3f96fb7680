"""Notebook 06, exercise 1: the plain twin of a residual stage."""

from torch import nn

from resnet_edu.blocks import PlainBlock


def plain_twin(stage):
    """Each BasicBlock becomes a PlainBlock with the block's own weights; the stage is left as it was."""
    twin = nn.Sequential()
    for block in stage:
        plain = PlainBlock(block.conv1.in_channels, block.conv2.out_channels, block.stride)
        # Option A's shortcut has no weights, so the two blocks have the same state_dict keys;
        # load_state_dict copies the tensors (the twin trains apart from the stage).
        plain.load_state_dict(block.state_dict())
        twin.append(plain)
    return twin
