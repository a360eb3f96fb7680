"""resnet_edu.sanity: rank correlation of maps, the marked pixels, and the erasure test."""

import torch
from torch import nn

from resnet_edu.inside import grad_cam
from resnet_edu.sanity import erase, erasure_test, rank_correlation, top_pixels


def test_rank_correlation_is_one_for_the_same_order_and_minus_one_for_the_reverse():
    maps = torch.rand(3, 8, 8)
    assert torch.allclose(rank_correlation(maps, maps), torch.ones(3))
    assert torch.allclose(rank_correlation(maps, 2 * maps + 5), torch.ones(3))  # ranks, not values
    assert torch.allclose(rank_correlation(maps, -maps), -torch.ones(3))


def test_rank_correlation_of_unrelated_maps_is_near_zero():
    generator = torch.Generator().manual_seed(0)
    maps = torch.rand(400, 16, 16, generator=generator)
    values = rank_correlation(maps[:200], maps[200:])
    assert abs(float(values.mean())) < 0.02


def test_top_pixels_marks_the_largest_fraction_of_each_map():
    maps = torch.arange(2 * 10 * 10, dtype=torch.float32).view(2, 10, 10)
    mask = top_pixels(maps, 0.2)
    assert mask.sum(dim=(1, 2)).tolist() == [20, 20]
    assert mask[0, 8:].all() and not mask[0, :8].any()  # the two last rows hold the largest values


def test_erasing_sets_the_marked_pixels_to_the_mean_colour_of_a_normalised_batch():
    images, mask = torch.randn(2, 3, 4, 4), torch.zeros(2, 4, 4, dtype=torch.bool)
    mask[:, 0, 0] = True
    erased = erase(images, mask)
    assert (erased[:, :, 0, 0] == 0).all() and torch.equal(erased[:, :, 1:], images[:, :, 1:])


class BrightPatch(nn.Module):
    """Class 1's logit is the brightness of the image where it is bright; class 0's a constant."""

    def __init__(self):
        super().__init__()
        self.features = nn.Conv2d(3, 1, kernel_size=1, bias=False)
        nn.init.constant_(self.features.weight, 1.0)
        self.relu = nn.ReLU()

    def forward(self, x):
        evidence = self.relu(self.features(x)).mean(dim=(2, 3))  # (N, 1)
        return torch.cat([torch.full_like(evidence, 0.5), 20 * evidence], dim=1)


def test_erasing_the_region_grad_cam_marks_costs_more_than_erasing_another_images_region():
    images = torch.zeros(8, 3, 32, 32)
    for i in range(8):  # a bright patch in a different place in each image
        row, col = 3 * i, 24 - 3 * i
        images[i, :, row:row + 6, col:col + 6] = 1.0
    model = BrightPatch()
    maps, classes = grad_cam(model, images, "relu")
    assert (classes == 1).all()
    result = erasure_test(model, images, maps, classes, fraction=0.05)
    assert (result["map's region erased"] < result["control region erased"]).all()
    assert (result["map's region erased"] < result["before"]).all()


def test_tied_pixels_share_their_rank_and_an_empty_map_has_no_correlation():
    stepped = torch.tensor([[[0.0, 0.0], [1.0, 2.0]]])  # two tied pixels
    same_order = torch.tensor([[[5.0, 5.0], [6.0, 7.0]]])
    assert torch.allclose(rank_correlation(stepped, same_order), torch.ones(1))  # with ordinal ranks: 0.8
    empty = torch.zeros(1, 2, 2)
    assert torch.isnan(rank_correlation(stepped, empty)).all()  # not a number made from the pixels' positions
