import torch
import torch.nn.functional as F

from bot.art.cutouts import halve, make_cutouts, random_affine


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


def test_small_images_sample_the_image_itself():
    """No mip level fits below 2x the cut size; the atlas path then equals grid_sample on the image."""
    image = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(4))
    generator = torch.Generator().manual_seed(5)
    cutouts = make_cutouts(image, 6, 24, generator, flip_prob=0.5, colour_jitter=0.0, noise=0.0)
    theta = random_affine(6, 40, 40, torch.Generator().manual_seed(5), image.device,
                          min_scale=0.25, cut_pow=1.0, flip_prob=0.5)
    grid = F.affine_grid(theta, [6, 3, 24, 24], align_corners=False)
    expected = F.grid_sample(image.expand(6, -1, -1, -1), grid, padding_mode="reflection", align_corners=False)
    assert torch.allclose(cutouts, expected, atol=1e-5)


def test_halve_is_a_2x2_box_average():
    image = torch.rand(1, 3, 37, 50, generator=torch.Generator().manual_seed(6))
    assert torch.allclose(halve(image), F.avg_pool2d(image, 2), atol=1e-6)
