"""Neural style transfer (Gatys et al.) on VGG16 features, optimised with Adam from the content image.

The content loss keeps a deep layer's activations close to the content image's; the style loss
matches the Gram matrices (which features fire together, wherever they are) of several layers to
the style image's. The start is the content image itself, so the result does not depend on the seed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bot.art.imagefiles import load_image_file
from bot.art.images import image_to_tensor, preview_image, tensor_to_image
from bot.art.losses import total_variation
from bot.art.technique import RunContext, RunResult, losses_as_floats, param, validate_fields
from bot.art.vgg import MIN_SIDE, RANDOM_WEIGHTS_NOTE, fitted_size, vgg_activations

CONTENT_LAYER = "relu4_2"
STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")


@dataclass(frozen=True)
class StyleConfig:
    content: str = param(None, help="image file whose layout to keep", image=True)
    style: str = param(None, help="image file whose textures and colours to paint with", image=True)
    steps: int = param(300, help="optimisation steps", min=1, max=10000, limit="steps")
    size: int = param(512, help="longest side of the result in pixels", min=MIN_SIDE, max=4096, limit="size")
    style_weight: float = param(1e6, help="how strongly to match the style", min=0.0, max=1e12)
    content_weight: float = param(1.0, help="how strongly to keep the content", min=0.0, max=1e6)
    tv_weight: float = param(1.0, help="smoothness: total variation penalty", min=0.0, max=1e6)
    lr: float = param(0.02, help="Adam learning rate on the pixels", min=1e-5, max=1.0)

    def __post_init__(self) -> None:
        validate_fields(self)
        if not self.content or not self.style:
            raise ValueError("style needs two images: --content (the picture) and --style (the painting).")


def gram(features: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, C, C] feature correlations, normalised by the number of elements."""
    _, channels, height, width = features.shape
    flat = features.flatten(2)  # [B, C, H*W]
    return flat @ flat.transpose(1, 2) / (channels * height * width)


class StyleTechnique:
    name = "style"
    config_type = StyleConfig

    def run(self, config: StyleConfig, seed: int, ctx: RunContext) -> RunResult:
        started = time.perf_counter()
        device = ctx.device
        vgg = ctx.models.vgg_features()
        content_image, style_image = load_image_file(config.content), load_image_file(config.style)
        content_size = fitted_size(*content_image.size, config.size)
        style_size = fitted_size(*style_image.size, config.size)
        content = image_to_tensor(content_image, content_size, device)  # [1, 3, H, W]
        style = image_to_tensor(style_image, style_size, device)  # [1, 3, H', W']
        with torch.no_grad():
            content_target = vgg_activations(vgg, content, [CONTENT_LAYER])[CONTENT_LAYER]
            style_targets = {name: gram(a) for name, a in vgg_activations(vgg, style, STYLE_LAYERS).items()}

        pixels = content.clone().requires_grad_(True)  # [1, 3, H, W], optimised directly
        optimizer = torch.optim.Adam([pixels], lr=config.lr)
        frames, losses, steps_done, cancelled = [], [], 0, False
        for step in range(1, config.steps + 1):
            if ctx.should_cancel():
                cancelled = True
                break
            activations = vgg_activations(vgg, pixels, (CONTENT_LAYER, *STYLE_LAYERS))
            content_loss = F.mse_loss(activations[CONTENT_LAYER], content_target)
            style_loss = sum(F.mse_loss(gram(activations[n]), style_targets[n]) for n in STYLE_LAYERS)
            loss = (config.content_weight * content_loss + config.style_weight * style_loss
                    + config.tv_weight * total_variation(pixels))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                pixels.clamp_(0, 1)
            losses.append(loss.detach())
            steps_done = step
            if step % ctx.progress_every == 0 or step == config.steps:
                preview = preview_image(pixels)
                frames.append(preview)
                ctx.on_progress(step, config.steps, preview, {"loss": float(losses[-1])})

        return RunResult(
            image=tensor_to_image(pixels),
            frames=frames,
            losses=losses_as_floats(losses),
            seconds=time.perf_counter() - started,
            steps_done=steps_done,
            cancelled=cancelled,
            notes=[RANDOM_WEIGHTS_NOTE] if vgg.random_weights else [],
        )


TECHNIQUE = StyleTechnique()
