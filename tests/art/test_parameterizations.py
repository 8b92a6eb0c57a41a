import pytest
import torch

from bot.art.parameterizations import PARAMETERIZATIONS, make_parameterization

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
