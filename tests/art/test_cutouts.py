import torch

from bot.art.cutouts import make_cutouts


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
