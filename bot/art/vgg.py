"""What the VGG16 techniques (style, dream) share: image sizing and reading layer activations."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from bot.art.models import VggFeatures

MIN_SIDE = 32  # VGG16 pools four times before relu4_x/relu5_x; smaller images leave nothing to compare
RANDOM_WEIGHTS_NOTE = "VGG16 weights are random: this shows the method, not what trained weights would give"


def fitted_size(width: int, height: int, longest: int) -> tuple[int, int]:
    """(width, height) with the aspect ratio kept and the longest side `longest`."""
    scale = longest / max(width, height)
    return max(MIN_SIDE, round(width * scale)), max(MIN_SIDE, round(height * scale))


def vgg_activations(vgg: VggFeatures, image: torch.Tensor, names: Iterable[str]) -> dict[str, torch.Tensor]:
    """Activations of the named VGG16 layers for a [B, 3, H, W] image in 0..1, run only as deep as needed."""
    wanted = {vgg.layers[name]: name for name in names}
    x = (image - vgg.mean) / vgg.std  # [B, 3, H, W]
    if x.is_cuda:  # cuDNN's convolutions are faster on channels-last tensors (NHWC in memory)
        x = x.contiguous(memory_format=torch.channels_last)
    activations = {}
    for index, layer in enumerate(vgg.features[: max(wanted) + 1]):
        x = layer(x)
        if index in wanted:
            activations[wanted[index]] = x  # [B, C_l, H_l, W_l]
    return activations
