"""Losses for CLIP-guided optimisation."""

from __future__ import annotations

import torch


def spherical_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared great-circle distance between unit vectors along the last dim (0 same, pi^2/2 opposite)."""
    return (a - b).norm(dim=-1).div(2).clamp(max=1).arcsin().pow(2).mul(2)


class TotalVariation(torch.autograd.Function):
    """Mean squared difference between neighbouring pixels, with a backward pass written out.

    Autograd's backward of the plain formula (slices, squares, means) makes about twenty passes over
    the image; the gradient itself, each difference pushed onto its two pixels, takes about ten. At 512 px
    on a CPU that is over twice as fast, which matters because it runs every step.
    """

    @staticmethod
    def forward(ctx, image: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(image)
        dx, dy = image.diff(dim=-1), image.diff(dim=-2)  # [B, C, H, W-1], [B, C, H-1, W]
        return dx.square().mean() + dy.square().mean()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (image,) = ctx.saved_tensors
        dx, dy = image.diff(dim=-1), image.diff(dim=-2)
        dx.mul_(2 * grad / dx.numel())  # d(mean of dx^2)/d(dx)
        dy.mul_(2 * grad / dy.numel())
        grad_image = torch.zeros_like(image)  # [B, C, H, W]: dx = right - left, so +dx to the right, -dx to the left
        grad_image[..., 1:] += dx
        grad_image[..., :-1] -= dx
        grad_image[..., 1:, :] += dy
        grad_image[..., :-1, :] -= dy
        return grad_image


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between neighbouring pixels of [B, C, H, W]: small for smooth images."""
    return TotalVariation.apply(image)


def weighted_prompt_loss(
    image_embeds: torch.Tensor, prompt_embeds: torch.Tensor, prompt_weights: torch.Tensor
) -> torch.Tensor:
    """Sum over prompts of weight * mean over cutouts of the spherical distance (all unit vectors).

    image_embeds [cutn, D], prompt_embeds [P, D], prompt_weights [P]; negative weights push away.
    """
    distances = spherical_distance(image_embeds[:, None, :], prompt_embeds[None, :, :])  # [cutn, P]
    return (distances.mean(dim=0) * prompt_weights).sum()
