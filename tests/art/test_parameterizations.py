import pytest
import torch
import torch.nn.functional as F

from bot.art.parameterizations import PARAMETERIZATIONS, ImageStack, Upsample2x, make_parameterization

CPU = torch.device("cpu")


@pytest.mark.parametrize("kind", list(PARAMETERIZATIONS))
def test_set_image_round_trips_mid_range_pixels(kind):
    pixels = 0.1 + 0.8 * torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    image_param = make_parameterization(kind, 32, CPU, torch.Generator().manual_seed(1))
    image_param.set_image(pixels)
    with torch.no_grad():
        assert torch.allclose(image_param(), pixels, atol=1e-4)


@pytest.mark.parametrize("kind", list(PARAMETERIZATIONS))
def test_black_init_pixels_can_still_learn(kind):
    """A sigmoid pinned at 0.001 has slope 0.001: black areas of an init image would barely move."""
    black = torch.zeros(1, 3, 32, 32)
    image_param = make_parameterization(kind, 32, CPU, torch.Generator().manual_seed(1), init=black,
                                        init_strength=1.0)
    image = image_param()  # [1, 3, 32, 32]
    assert image.max() < 0.03  # still black to the eye
    sigmoid_slope = image * (1 - image)
    assert sigmoid_slope.min() > 0.015
    image.sum().backward()
    grads = [p.grad.abs().max() for p in image_param.parameters()]
    assert max(grads) > 0.015


@pytest.mark.parametrize("height, width", [(1, 1), (2, 3), (5, 8)])
def test_upsample2x_is_bilinear_interpolation_and_its_gradient(height, width):
    x = torch.rand(1, 2, height, width, dtype=torch.float64, generator=torch.Generator().manual_seed(2),
                   requires_grad=True)
    expected = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    assert torch.allclose(Upsample2x.apply(x), expected)
    torch.autograd.gradcheck(Upsample2x.apply, (x,))


# 100 px: 50 -> 100 takes Upsample2x, 25 -> 50 (small) and 12 -> 25 (not 2x) F.interpolate
@pytest.mark.parametrize("size", [128, 100])
def test_image_stack_sums_its_layers_upsampled_coarse_to_fine(size):
    image_param = ImageStack(size, CPU, torch.Generator().manual_seed(3))
    total = 0
    for layer, finer in zip(image_param.layers[:-1], image_param.layers[1:], strict=True):
        total = F.interpolate(total + layer, size=finer.shape[-2:], mode="bilinear", align_corners=False)
    expected = torch.sigmoid(total + image_param.layers[-1])
    assert torch.allclose(image_param(), expected, atol=1e-6)
