"""Losses for CLIP-guided optimisation."""

from __future__ import annotations

import torch


def spherical_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared great-circle distance between unit vectors along the last dim (0 same, pi^2/2 opposite)."""
    return (a - b).norm(dim=-1).div(2).clamp(max=1).arcsin().pow(2).mul(2)


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between neighbouring pixels of [B, C, H, W]: small for smooth images."""
    dx = image[..., :, 1:] - image[..., :, :-1]  # [B, C, H, W-1]
    dy = image[..., 1:, :] - image[..., :-1, :]  # [B, C, H-1, W]
    return dx.pow(2).mean() + dy.pow(2).mean()


def weighted_prompt_loss(
    image_embeds: torch.Tensor, prompt_embeds: torch.Tensor, prompt_weights: torch.Tensor
) -> torch.Tensor:
    """Sum over prompts of weight * mean over cutouts of the spherical distance (all unit vectors).

    image_embeds [cutn, D], prompt_embeds [P, D], prompt_weights [P]; negative weights push away.
    """
    distances = spherical_distance(image_embeds[:, None, :], prompt_embeds[None, :, :])  # [cutn, P]
    return (distances.mean(dim=0) * prompt_weights).sum()
