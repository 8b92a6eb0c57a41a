"""Ways to describe an image with trainable numbers; each forward() gives the image [1, 3, H, W] in 0..1.

How an image is parameterised changes what the optimiser finds easy: raw pixels drift into
high-frequency noise, while a coarse-to-fine stack or a 1/f-scaled spectrum favours broad shapes first.
Each kind can also be set to a given image (`set_image`), which is how init images work.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# set_image clamps pixels to [LOGIT_EPS, 1 - LOGIT_EPS] before the logit: finite for pure black and
# white, and the sigmoid's slope there (~0.02, not ~0.001) leaves those areas of an init image free to change.
LOGIT_EPS = 0.02
FAST_UPSAMPLE_MIN_PIXELS = 48 * 48  # see `upsample`


class RawPixels(nn.Module):
    """One logit per pixel and channel, through a sigmoid."""

    def __init__(self, size: int, device: torch.device, generator: torch.Generator):
        super().__init__()
        self.logits = nn.Parameter(0.1 * torch.randn(1, 3, size, size, generator=generator, device=device))

    def forward(self) -> torch.Tensor:
        return torch.sigmoid(self.logits)  # [1, 3, S, S]

    @torch.no_grad()
    def set_image(self, pixels: torch.Tensor) -> None:
        self.logits.copy_(torch.logit(pixels, eps=LOGIT_EPS))


def upsample_axis(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Bilinear 2x along `dim` (align_corners=False): [..., n, ...] -> [..., 2n, ...].

    Output 2j is 3/4 of pixel j and 1/4 of pixel j-1, output 2j+1 3/4 of pixel j and 1/4 of pixel
    j+1; at the edges the missing neighbour is the pixel itself.
    """
    n = x.shape[dim]
    out = x.new_empty((*x.shape[:dim], n, 2, *x.shape[dim + 1:]))
    even, odd = out.select(dim + 1, 0), out.select(dim + 1, 1)  # each shaped like x
    torch.lerp(x.narrow(dim, 1, n - 1), x.narrow(dim, 0, n - 1), 0.25, out=even.narrow(dim, 1, n - 1))
    torch.lerp(x.narrow(dim, 0, n - 1), x.narrow(dim, 1, n - 1), 0.25, out=odd.narrow(dim, 0, n - 1))
    even.narrow(dim, 0, 1).copy_(x.narrow(dim, 0, 1))
    odd.narrow(dim, n - 1, 1).copy_(x.narrow(dim, n - 1, 1))
    return out.flatten(dim, dim + 1)


def upsample_axis_adjoint(grad: torch.Tensor, dim: int) -> torch.Tensor:
    """The transpose of `upsample_axis`: [..., 2n, ...] -> [..., n, ...], each pixel gathering what it gave."""
    even, odd = grad.contiguous().unflatten(dim, (-1, 2)).unbind(dim + 1)
    n = even.shape[dim]
    result = (even + odd).mul_(0.75)
    result.narrow(dim, 0, n - 1).add_(even.narrow(dim, 1, n - 1), alpha=0.25)
    result.narrow(dim, 1, n - 1).add_(odd.narrow(dim, 0, n - 1), alpha=0.25)
    result.narrow(dim, 0, 1).add_(even.narrow(dim, 0, 1), alpha=0.25)
    result.narrow(dim, n - 1, 1).add_(odd.narrow(dim, n - 1, 1), alpha=0.25)
    return result


class Upsample2x(torch.autograd.Function):
    """F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False) for [B, C, H, W], separably.

    With the weights fixed at 3/4 and 1/4, each axis is two strided lerps, and the backward pass is
    their transpose. On CPU that is 4x faster than F.interpolate both ways (at 256 -> 512 px,
    2.3 -> 0.5 ms forward, 3.0 -> 0.9 ms backward): ImageStack does one every step at full size.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return upsample_axis(upsample_axis(x, 3), 2)  # [B, C, 2H, 2W]

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return upsample_axis_adjoint(upsample_axis_adjoint(grad, 2), 3)


def upsample(x: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """Bilinear resize of [B, C, H, W] to `size` (H', W'), through Upsample2x where that is faster.

    That is a 2x step on CPU of at least 48 x 48 px. Smaller, F.interpolate's one call costs less
    than Upsample2x's thirty small ops; on GPUs F.interpolate's kernels are fast at any size.
    """
    is_2x = tuple(size) == (2 * x.shape[-2], 2 * x.shape[-1])
    if is_2x and x.device.type == "cpu" and x.shape[-2] * x.shape[-1] >= FAST_UPSAMPLE_MIN_PIXELS:
        return Upsample2x.apply(x)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class ImageStack(nn.Module):
    """Layers from coarse (`min_side` px) to full resolution, summed coarse to fine, through a sigmoid.

    Each partial sum is upsampled 2x and the next layer added, so a coarse layer reaches full size
    through a chain of bilinear 2x steps: smooth, and cheaper than upsampling every layer to full size.
    """

    def __init__(self, size: int, device: torch.device, generator: torch.Generator, min_side: int = 8):
        super().__init__()
        sides = [size]
        while sides[-1] // 2 >= min_side:
            sides.append(sides[-1] // 2)
        self.layers = nn.ParameterList(
            nn.Parameter(0.1 * torch.randn(1, 3, side, side, generator=generator, device=device))
            for side in reversed(sides)  # coarse to fine; the last is full size
        )

    def coarse_sum(self) -> torch.Tensor:
        """All layers but the full-size one, summed and upsampled to full size: [1, 3, S, S] (or 0)."""
        total = 0
        for layer, finer in zip(self.layers[:-1], self.layers[1:], strict=True):
            total = upsample(total + layer, finer.shape[-2:])
        return total

    def forward(self) -> torch.Tensor:
        logits = self.coarse_sum() + self.layers[-1]  # [1, 3, S, S]
        return torch.sigmoid(logits)

    @torch.no_grad()
    def set_image(self, pixels: torch.Tensor) -> None:
        """Keep the coarse layers; the full-size layer takes up whatever makes the sum equal the image."""
        self.layers[-1].copy_(torch.logit(pixels, eps=LOGIT_EPS) - self.coarse_sum())


# Lucid's colour decorrelation: the square root of ImageNet's colour covariance (from its SVD).
COLOUR_CORRELATION_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])


class FourierImage(nn.Module):
    """An image as its 2D spectrum scaled by 1/frequency, in decorrelated colour (as in Lucid).

    The 1/f scaling makes every frequency equally easy to change, which counters the optimiser's
    pull towards high-frequency noise; the colour matrix does the same across correlated channels.
    """

    def __init__(self, size: int, device: torch.device, generator: torch.Generator, decay_power: float = 1.0):
        super().__init__()
        self.size = size
        freq_y = torch.fft.fftfreq(size, device=device)[:, None]  # [S, 1]
        freq_x = torch.fft.rfftfreq(size, device=device)[None, :]  # [1, S//2+1]
        frequency = (freq_y**2 + freq_x**2).sqrt()  # [S, S//2+1]
        self.register_buffer("spectrum_scale", size / frequency.clamp(min=1.0 / size) ** decay_power)
        colour = COLOUR_CORRELATION_SQRT.to(device)
        self.register_buffer("colour_matrix", colour / colour.norm(dim=0).max())  # [3, 3]
        self.spectrum = nn.Parameter(  # [1, 3, S, S//2+1, (real, imag)]
            0.01 * torch.randn(1, 3, size, size // 2 + 1, 2, generator=generator, device=device)
        )

    def forward(self) -> torch.Tensor:
        spectrum = torch.view_as_complex(self.spectrum) * self.spectrum_scale  # [1, 3, S, S//2+1]
        decorrelated = torch.fft.irfft2(spectrum, s=(self.size, self.size))  # [1, 3, S, S], 4x the logits' scale
        # Correlate the colours and divide by 4 (exactly, a power of two) in one [3, 3] @ [3, S*S] product:
        # no einsum permutes, no extra pass over the image.
        logits = (self.colour_matrix / 4) @ decorrelated.view(3, -1)  # [3, S*S]
        return torch.sigmoid(logits).view(1, 3, self.size, self.size)

    @torch.no_grad()
    def set_image(self, pixels: torch.Tensor) -> None:
        logits = torch.logit(pixels, eps=LOGIT_EPS)
        decorrelated = torch.einsum("ij,bjhw->bihw", torch.linalg.inv(self.colour_matrix), logits)
        spectrum = torch.fft.rfft2(decorrelated * 4) / self.spectrum_scale  # [1, 3, S, S//2+1]
        self.spectrum.copy_(torch.view_as_real(spectrum))


PARAMETERIZATIONS = {"stack": ImageStack, "pixels": RawPixels, "fourier": FourierImage}


def make_parameterization(
    kind: str,
    size: int,
    device: torch.device,
    generator: torch.Generator,
    init: torch.Tensor | None = None,
    init_strength: float = 0.5,
) -> nn.Module:
    """A fresh `kind` image of side `size`; with `init` [1, 3, size, size] it starts as a blend:
    `init_strength` of the init image and the rest of its own random start."""
    if kind not in PARAMETERIZATIONS:
        choices = ", ".join(PARAMETERIZATIONS)
        raise ValueError(f"unknown image parameterisation {kind!r}; choose one of {choices}")
    parameterization = PARAMETERIZATIONS[kind](size, device, generator)
    if init is not None:
        with torch.no_grad():
            start = init_strength * init.to(device) + (1 - init_strength) * parameterization()
            parameterization.set_image(start)
    return parameterization
