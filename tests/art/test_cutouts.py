import pytest
import torch
import torch.nn.functional as F

from bot.art.cutouts import halve, make_cutouts, mip_levels, random_squares


def cutouts_for(seed: int, image: torch.Tensor) -> torch.Tensor:
    return make_cutouts(image, cutn=8, cut_size=24, generator=torch.Generator().manual_seed(seed))


def test_shape_and_gradients_reach_the_image():
    image = torch.rand(1, 3, 40, 56, requires_grad=True)
    cutouts = cutouts_for(0, image)
    assert cutouts.shape == (8, 3, 24, 24)
    cutouts.sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0


def test_same_generator_seed_gives_same_cutouts():
    image = torch.rand(1, 3, 48, 48)
    assert torch.equal(cutouts_for(1, image), cutouts_for(1, image))
    assert not torch.equal(cutouts_for(1, image), cutouts_for(2, image))


def test_without_augmentation_a_constant_image_stays_constant():
    image = torch.full((1, 3, 32, 32), 0.25)
    cutouts = make_cutouts(image, 4, 16, torch.Generator().manual_seed(0), colour_jitter=0.0, noise=0.0)
    assert torch.allclose(cutouts, torch.full_like(cutouts, 0.25))


def plain_cutouts(image: torch.Tensor, cut_size: int, **options) -> torch.Tensor:
    """Full-frame cutouts with no flip and no augmentation: only the resize is left."""
    return make_cutouts(image, 3, cut_size, torch.Generator().manual_seed(0), min_scale=1.0, flip_prob=0.0,
                        colour_jitter=0.0, noise=0.0, **options)


def test_large_crops_are_area_averaged_not_aliased():
    """4x the cut size: the cutout samples the 2x-halved-twice mip level at its pixel centres, which is
    exactly a 4x4 box average, so it matches area resizing up to float rounding of the grid."""
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    expected = F.interpolate(image, size=16, mode="area")  # [1, 3, 16, 16]
    cutouts = plain_cutouts(image, 16)
    assert torch.allclose(cutouts, expected.expand_as(cutouts), atol=1e-5)
    bilinear = F.interpolate(image, size=16, mode="bilinear", align_corners=False)
    assert (bilinear - expected).abs().max() > 0.1  # what plain bilinear sampling would have given


def affine_grid_of(half: torch.Tensor, centre: torch.Tensor, cut_size: int) -> torch.Tensor:
    """The squares from random_squares as F.affine_grid grids [cutn, S, S, 2]."""
    zero = torch.zeros_like(half[:, 0])
    theta = torch.stack([
        torch.stack([half[:, 0], zero, centre[:, 0]], dim=-1),
        torch.stack([zero, half[:, 1], centre[:, 1]], dim=-1),
    ], dim=1)  # [cutn, 2, 3]
    return F.affine_grid(theta, [len(theta), 3, cut_size, cut_size], align_corners=False)


def test_small_images_sample_the_image_itself():
    """No mip level fits below 2x the cut size; the atlas path then equals grid_sample on the image."""
    image = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(4))
    generator = torch.Generator().manual_seed(5)
    cutouts = make_cutouts(image, 6, 24, generator, flip_prob=0.5, colour_jitter=0.0, noise=0.0)
    half, centre = random_squares(6, 40, 40, torch.Generator().manual_seed(5), image.device,
                                  min_scale=0.25, cut_pow=1.0, flip_prob=0.5)
    grid = affine_grid_of(half, centre, 24)
    expected = F.grid_sample(image.expand(6, -1, -1, -1), grid, padding_mode="reflection", align_corners=False)
    assert torch.allclose(cutouts, expected, atol=1e-5)


@pytest.mark.parametrize("min_scale, levels_used", [(0.1, {0, 1, 2}), (0.25, {1, 2})])
def test_each_cutout_samples_the_mip_level_that_suits_its_size(min_scale, levels_used):
    """Against grid_sample on each cutout's level alone (border padding), 256 px image, 32 px cutouts.

    At min_scale 0.25 no cutout is below 64 px wide: the atlas leaves the full image out. In float64:
    in float32 the rounding of atlas coordinates alone reaches 3e-5."""
    image = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    cutouts = make_cutouts(image, 64, 32, torch.Generator().manual_seed(8), min_scale=min_scale,
                           colour_jitter=0.0, noise=0.0)
    half, centre = random_squares(64, 256, 256, torch.Generator().manual_seed(8), image.device,
                                  min_scale=min_scale, cut_pow=1.0, flip_prob=0.5)
    grid = affine_grid_of(half.double(), centre.double(), 32)
    pyramid = [image]
    for _ in range(3):
        pyramid.append(F.avg_pool2d(pyramid[-1], 2))
    level = torch.log2(half[:, 1] * 256 / 32).floor().long().clamp(0, 3)  # [cutn]
    assert set(level.tolist()) == levels_used
    expected = torch.stack([
        F.grid_sample(pyramid[k], grid[n:n + 1], padding_mode="border", align_corners=False)[0]
        for n, k in enumerate(level.tolist())
    ])
    assert torch.allclose(cutouts, expected, atol=1e-9)


def test_only_the_levels_some_cutout_needs_are_built():
    assert mip_levels(512, 512, 64, min_side=128) == range(1, 4)  # no cutout reads the full image
    assert mip_levels(256, 256, 64, min_side=64) == range(0, 3)
    assert mip_levels(128, 128, 64, min_side=32) == range(0, 2)
    assert mip_levels(64, 64, 16, min_side=64) == range(2, 3)  # one level: the atlas is that level
    assert mip_levels(40, 40, 24, min_side=40) == range(0, 1)  # the image cannot be halved


def test_normalisation_folds_into_the_augmentation():
    image = torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(9))
    mean, std = torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1), torch.tensor([0.2, 0.3, 0.25]).view(1, 3, 1, 1)
    plain = make_cutouts(image, 5, 32, torch.Generator().manual_seed(10))
    normalised = make_cutouts(image, 5, 32, torch.Generator().manual_seed(10), mean=mean, std=std)
    assert torch.allclose(normalised, (plain - mean) / std, atol=1e-5)


def test_halve_is_a_2x2_box_average():
    image = torch.rand(1, 3, 37, 50, generator=torch.Generator().manual_seed(6))
    assert torch.allclose(halve(image), F.avg_pool2d(image, 2), atol=1e-6)


@pytest.mark.parametrize("height, width", [(5, 7), (4, 4)])
def test_halve_gradient(height, width):
    image = torch.rand(1, 2, height, width, dtype=torch.float64, generator=torch.Generator().manual_seed(6),
                       requires_grad=True)
    torch.autograd.gradcheck(halve, (image,))
