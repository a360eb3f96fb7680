"""Notebook 05: the random horizontal flip of a batch of images."""

import torch


def my_random_flip(images, flip):
    # images: (N, 3, H, W); flip: (N,) booleans. Reverse the width (dimension 3) where flip is True.
    return torch.where(flip.view(-1, 1, 1, 1), images.flip(3), images)
