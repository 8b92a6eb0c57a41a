import math

import torch
import torch.nn.functional as F

from bot.art.losses import spherical_distance, total_variation, weighted_prompt_loss


def test_spherical_distance_is_zero_for_the_same_direction_and_largest_for_opposite():
    a = F.normalize(torch.tensor([[1.0, 2.0, 3.0]]), dim=-1)
    assert spherical_distance(a, a).item() == 0.0
    # arcsin is steep near 1, so float32 rounding of the norm shows here: a looser tolerance
    assert math.isclose(spherical_distance(a, -a).item(), math.pi**2 / 2, rel_tol=1e-3)
    orthogonal = F.normalize(torch.tensor([[3.0, 0.0, -1.0]]), dim=-1)
    assert math.isclose(spherical_distance(a, orthogonal).item(), 2 * (math.pi / 4) ** 2, rel_tol=1e-5)


def test_a_negative_weight_pulls_the_image_away_from_its_prompt():
    prompts = F.normalize(torch.randn(2, 8, generator=torch.Generator().manual_seed(0)), dim=-1)  # [2, D]
    image = prompts[:1].clone().requires_grad_(True)  # starts on the first prompt
    loss = weighted_prompt_loss(F.normalize(image, dim=-1), prompts, torch.tensor([1.0, -1.0]))
    loss.backward()
    moved = F.normalize(image - 0.1 * image.grad, dim=-1)
    assert spherical_distance(moved, prompts[1:]) > spherical_distance(prompts[:1], prompts[1:])


def test_total_variation_is_zero_for_a_flat_image_and_grows_with_noise():
    flat = torch.full((1, 3, 16, 16), 0.5)
    noisy = flat + 0.1 * torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert total_variation(flat).item() == 0.0 and total_variation(noisy).item() > 0.01


def test_total_variation_gradient_is_that_of_its_formula():
    image = torch.rand(2, 3, 7, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    torch.autograd.gradcheck(total_variation, (image,))
    dx, dy = image[..., :, 1:] - image[..., :, :-1], image[..., 1:, :] - image[..., :-1, :]
    plain = dx.pow(2).mean() + dy.pow(2).mean()
    (expected,) = torch.autograd.grad(3 * plain, image)
    (gradient,) = torch.autograd.grad(3 * total_variation(image), image)
    assert torch.equal(total_variation(image), plain) and torch.allclose(gradient, expected)
