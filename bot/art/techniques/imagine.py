"""imagine: optimise an image so CLIP thinks it matches a text prompt.

Each step renders the image from its parameterisation, takes `cutn` random augmented cutouts,
embeds them with CLIP and moves the image so the cutouts' embeddings get closer (in spherical
distance) to the prompts' embeddings: weighted, with negative prompts pushed away. A little
total variation keeps the image from dissolving into noise.
"""

from __future__ import annotations

import time
from dataclasses import MISSING, dataclass

import torch
import torch.nn.functional as F
from PIL import Image

from bot.art.clip_guided import Goal, GuideConfig, GuidedImage, estimated_bytes, run_alone
from bot.art.imagefiles import load_image_file
from bot.art.images import image_to_tensor, preview_image, tensor_to_image
from bot.art.models import ClipModel
from bot.art.parameterizations import PARAMETERIZATIONS
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


class ImagineJob:
    """One imagine job between steps: its image, its previews and its progress reports."""

    def __init__(self, config: ImagineConfig, seed: int, ctx: RunContext) -> None:
        self.started = time.perf_counter()
        self.ctx = ctx
        self.clip = ctx.models.clip()
        goal = prompt_targets(config, self.clip, ctx.device)
        init = None
        if config.init_image:
            init = image_to_tensor(load_image_file(config.init_image).convert("RGB"), config.size, ctx.device)
        self.image = GuidedImage(guide_config(config), goal, seed, ctx.device, init=init,
                                 init_strength=config.init_strength)
        self.images = [self.image]
        self.frames: list[Image.Image] = []

    @property
    def done(self) -> bool:
        return self.image.done

    def after_step(self) -> None:
        step, total = self.image.step, self.image.config.steps
        if step % self.ctx.progress_every == 0 or step == total:
            preview = preview_image(self.image.current(), max_side=FRAME_SIDE)
            self.frames.append(preview)
            self.ctx.on_progress(step, total, preview, {"loss": self.image.losses[-1].item()})

    def result(self, cancelled: bool) -> RunResult:
        return RunResult(
            image=tensor_to_image(self.image.current()),
            frames=self.frames,
            losses=losses_as_floats(self.image.losses),
            seconds=time.perf_counter() - self.started,
            steps_done=self.image.step,
            cancelled=cancelled,
            notes=["CLIP weights are random"] if self.clip.random_weights else [],
        )


def guide_config(config: ImagineConfig) -> GuideConfig:
    return GuideConfig(steps=config.steps, size=config.size, param=config.param, cutn=config.cutn, lr=config.lr,
                       tv_weight=config.tv_weight)


@torch.no_grad()
def prompt_targets(config: ImagineConfig, clip: ClipModel, device: torch.device) -> Goal:
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
    return Goal(torch.cat(embeds), torch.tensor(weights, device=device))


class ImagineTechnique:
    name = "imagine"
    config_type = ImagineConfig

    prompt_targets = staticmethod(prompt_targets)

    def start(self, config: ImagineConfig, seed: int, ctx: RunContext) -> ImagineJob:
        return ImagineJob(config, seed, ctx)

    def estimated_bytes(self, config: ImagineConfig, ctx: RunContext) -> int:
        return estimated_bytes(guide_config(config), ctx.models.clip())

    def run(self, config: ImagineConfig, seed: int, ctx: RunContext) -> RunResult:
        return run_alone(self.start(config, seed, ctx), ctx)

TECHNIQUE = ImagineTechnique()
