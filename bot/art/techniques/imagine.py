"""imagine: optimise an image so CLIP thinks it matches a text prompt.

Each step renders the image from its parameterisation, takes `cutn` random augmented cutouts,
embeds them with CLIP and moves the image so the cutouts' embeddings get closer (in spherical
distance) to the prompts' embeddings: weighted, with negative prompts pushed away. A little
total variation keeps the image from dissolving into noise.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import MISSING, dataclass

import torch
import torch.nn.functional as F
from PIL import Image

from bot.art.cutouts import make_cutouts
from bot.art.imagefiles import load_image_file
from bot.art.images import image_to_tensor, preview_image, tensor_to_image
from bot.art.losses import total_variation, weighted_prompt_loss
from bot.art.models import ClipModel
from bot.art.parameterizations import PARAMETERIZATIONS, make_parameterization
from bot.art.prompts import WeightedPrompt, parse_weighted_prompts
from bot.art.technique import RunContext, RunResult, losses_as_floats, validate_fields
from bot.art.technique import param as config_param  # aliased: one field below is called `param`

FRAME_SIDE = 256  # animation frames are previews at most this many pixels a side


def split_negative_prompts(text: str) -> list[str]:
    """`blurry, text | watermark` -> ["blurry", "text", "watermark"]."""
    return [part.strip() for part in text.replace("|", ",").split(",") if part.strip()]


@dataclass(frozen=True)
class ImagineConfig:
    prompt: str = config_param(
        MISSING, help="what to draw; several prompts as `a lighthouse | stormy sea:0.5 | text:-1`"
    )
    negative: str = config_param("", flag="no", help="things to keep out, separated by commas or `|`")
    steps: int = config_param(200, min=1, max=5000, limit="steps", help="optimisation steps")
    size: int = config_param(256, min=32, max=2048, limit="size", help="side of the square image in pixels")
    param: str = config_param(
        "stack", choices=tuple(PARAMETERIZATIONS),
        help="how the image is described: stack (coarse-to-fine layers), pixels, or fourier (spectrum)",
    )
    cutn: int = config_param(32, min=1, max=128, help="random cutouts CLIP looks at each step")
    lr: float = config_param(0.05, min=1e-4, max=1.0, help="Adam learning rate")
    tv_weight: float = config_param(0.05, min=0.0, max=10.0, help="smoothness: total variation weight")
    init_image: str | None = config_param(None, help="an image file to start from", image=True)
    init_strength: float = config_param(
        0.5, min=0.0, max=1.0, help="how much of the init image to start with"
    )
    image_prompt: str | None = config_param(None, help="an image file whose look to aim for as well", image=True)
    image_prompt_weight: float = config_param(
        1.0, min=-10.0, max=10.0, help="weight of the image prompt (negative pushes away)"
    )

    def __post_init__(self) -> None:
        validate_fields(self)
        self.text_prompts()  # raises ValueError with what is wrong with the prompt

    def text_prompts(self) -> list[WeightedPrompt]:
        """The prompt's weighted texts, then each negative text with weight -1."""
        negatives = [WeightedPrompt(text, -1.0) for text in split_negative_prompts(self.negative)]
        return parse_weighted_prompts(self.prompt) + negatives


class ImagineTechnique:
    name = "imagine"
    config_type = ImagineConfig

    def run(self, config: ImagineConfig, seed: int, ctx: RunContext) -> RunResult:
        started = time.perf_counter()
        device = ctx.device
        clip = ctx.models.clip()
        # bf16 autocast for CLIP on GPUs that have it; fp32 elsewhere (fp16 would need loss scaling).
        use_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if use_bf16 else contextlib.nullcontext()
        generator = torch.Generator(device=device).manual_seed(seed)

        prompt_embeds, prompt_weights = self.prompt_targets(config, clip, device)  # [P, D], [P]
        init = None
        if config.init_image:
            init = image_to_tensor(load_image_file(config.init_image).convert("RGB"), config.size, device)
        image_param = make_parameterization(
            config.param, config.size, device, generator, init=init, init_strength=config.init_strength
        )
        optimizer = torch.optim.Adam(image_param.parameters(), lr=config.lr)

        losses: list[torch.Tensor] = []  # 0-d device tensors, read back once at the end
        frames: list[Image.Image] = []
        cancelled = False
        for step in range(1, config.steps + 1):
            if ctx.should_cancel():
                cancelled = True
                break
            image = image_param()  # [1, 3, S, S]
            cutouts = make_cutouts(image, config.cutn, clip.image_size, generator)  # [cutn, 3, C, C]
            cutouts = (cutouts - clip.mean) / clip.std
            with autocast:
                image_embeds = clip.model.encode_image(cutouts)  # [cutn, D]
            image_embeds = F.normalize(image_embeds.float(), dim=-1)
            loss = weighted_prompt_loss(image_embeds, prompt_embeds, prompt_weights)
            loss = loss + config.tv_weight * total_variation(image)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())

            if step % ctx.progress_every == 0 or step == config.steps:
                with torch.no_grad():
                    preview = preview_image(image_param(), max_side=FRAME_SIDE)
                frames.append(preview)
                ctx.on_progress(step, config.steps, preview, {"loss": loss.item()})

        with torch.no_grad():
            final_image = tensor_to_image(image_param())
        notes = ["CLIP weights are random"] if clip.random_weights else []
        return RunResult(
            image=final_image,
            frames=frames,
            losses=losses_as_floats(losses),
            seconds=time.perf_counter() - started,
            steps_done=len(losses),
            cancelled=cancelled,
            notes=notes,
        )

    @torch.no_grad()
    def prompt_targets(
        self, config: ImagineConfig, clip: ClipModel, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit CLIP embeddings [P, D] of the text (and image) prompts, and their weights [P]."""
        prompts = config.text_prompts()
        tokens = clip.tokenizer([prompt.text for prompt in prompts]).to(device)  # [P_text, context_length]
        embeds = [F.normalize(clip.model.encode_text(tokens).float(), dim=-1)]
        weights = [prompt.weight for prompt in prompts]
        if config.image_prompt:
            target = load_image_file(config.image_prompt).convert("RGB")
            pixels = image_to_tensor(target, clip.image_size, device)  # [1, 3, C, C]
            image_embed = clip.model.encode_image((pixels - clip.mean) / clip.std)  # [1, D]
            embeds.append(F.normalize(image_embed.float(), dim=-1))
            weights.append(config.image_prompt_weight)
        return torch.cat(embeds), torch.tensor(weights, device=device)


TECHNIQUE = ImagineTechnique()
