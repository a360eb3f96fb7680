"""Does a heat map tell the truth about the network? Two tests of Grad-CAM (or any saliency map):

* the model-randomisation check of Adebayo et al. (2018, "Sanity Checks for Saliency Maps"): a map
  that explains the network must change when the network's weights are replaced by random ones;
  :func:`rank_correlation` compares the two maps of each image;
* a deletion test of faithfulness: erase the pixels a map marks and see how much the class's
  probability falls, against erasing a region of the same size that the map did not choose
  (:func:`erasure_test`; the control region is another image's marked region, so it has the same
  size and the same kind of shape, in a place unrelated to this image).
"""

import torch
import torch.nn.functional as F

from .inside import kept_as_is


def rank_correlation(maps, other_maps):
    """Spearman's rank correlation of each pair of maps (N, H, W) over their pixels: (N,) values from
    -1 to 1 (1: the pixels in the same order of importance). Tied pixels share their average rank, so
    an empty map (all 0) has no order at all and gives NaN, never a number made up from pixel positions."""
    a, b = _average_ranks(maps), _average_ranks(other_maps)
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return ((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))).to(maps.device)


def _average_ranks(maps):
    """Each map's pixels ranked 0, 1, ... by value, ties given the mean of their ranks (on the CPU)."""
    flat = maps.detach().flatten(1).float().cpu()
    ranks = torch.empty_like(flat)
    values, order = flat.sort(1)
    for row in range(len(flat)):
        _, group, counts = torch.unique_consecutive(values[row], return_inverse=True, return_counts=True)
        ends = counts.cumsum(0).float()
        ranks[row, order[row]] = ((ends - counts + ends - 1) / 2)[group]
    return ranks


def top_pixels(maps, fraction):
    """A mask (N, H, W) of each map's ``fraction`` of pixels with the largest values."""
    flat = maps.flatten(1)
    keep = max(1, round(fraction * flat.shape[1]))
    mask = torch.zeros_like(flat, dtype=torch.bool)
    mask.scatter_(1, flat.topk(keep, dim=1).indices, True)
    return mask.view_as(maps)


@torch.no_grad()
def class_probability(model, images, classes):
    """The softmax probability of ``classes[i]`` for ``images[i]``, in eval mode: (N,)."""
    with kept_as_is(model):
        model.eval()
        return F.softmax(model(images).float(), dim=1).gather(1, classes[:, None])[:, 0]


def erase(images, mask):
    """The images with the masked pixels set to 0 in every channel: in a normalised batch, the data
    set's mean colour (the value that carries the least information)."""
    return images * ~mask[:, None]


def erasure_test(model, images, maps, classes, fraction=0.2, seed=0):
    """Erase each image's ``fraction`` of pixels that its map marks most, or, as the control, the
    pixels that another image's map marks most (a random pairing from ``seed``). Returns the
    probability of the class before, after erasing the map's region, after erasing the control's."""
    other = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed)).to(maps.device)
    same = other == torch.arange(len(images), device=maps.device)
    other[same] = (other[same] + 1) % len(images)  # never an image's own map
    marked, control = top_pixels(maps, fraction), top_pixels(maps[other], fraction)
    return {"before": class_probability(model, images, classes),
            "map's region erased": class_probability(model, erase(images, marked), classes),
            "control region erased": class_probability(model, erase(images, control), classes)}
