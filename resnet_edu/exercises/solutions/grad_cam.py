"""Notebook 07: Grad-CAM written with a forward hook (recording_outputs) and torch.autograd.grad."""

import torch
import torch.nn.functional as F

from resnet_edu.inside import recording_outputs


def my_grad_cam(model, images, layer, classes=None):
    with recording_outputs(model, [layer]) as outputs:
        logits = model(images)  # (N, classes)
    activations = outputs[layer]  # (N, C, h, w), still in the autograd graph
    if classes is None:
        classes = logits.argmax(1)  # each image's predicted class
    scores = logits[torch.arange(len(images)), classes]  # image i's logit for classes[i], before the softmax
    # One gradient for the whole batch: image i's score depends on image i's activations only.
    (gradients,) = torch.autograd.grad(scores.sum(), activations)
    weights = gradients.mean(dim=(2, 3), keepdim=True)  # (N, C, 1, 1): how much each channel counts
    maps = F.relu((weights * activations).sum(1, keepdim=True))  # (N, 1, h, w): evidence for the class only
    maps = F.interpolate(maps, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]  # (N, H, W)
    peaks = maps.flatten(1).max(1).values.clamp_min(1e-12)  # a map with no evidence stays 0
    return (maps / peaks[:, None, None]).detach(), classes
