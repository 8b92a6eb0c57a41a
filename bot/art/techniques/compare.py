"""compare: one prompt run several ways in one batch, to see what a single setting does.

`/compare "a lighthouse" what:lr` runs the same imagine job with the learning rate at 0.01, 0.05
and 0.2; it can also try the three parameterisations, a few cutout counts, smoothness weights or
seeds. The variants differ only in that setting: they share the job's seed, unless seeds are what
is compared. They step together, with one CLIP call for all their cutouts each step
(`step_together`), so a variant gives the image its imagine job would give alone. Progress shows
the variants side by side; the result is one contact sheet with each variant's recipe.
"""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import MISSING, dataclass
from typing import Any

from PIL import Image

from bot.art.clip_guided import GuidedImage, estimated_bytes, run_alone
from bot.art.contact_sheet import captioned_grid
from bot.art.images import preview_image, tensor_to_image
from bot.art.parameterizations import PARAMETERIZATIONS
from bot.art.technique import RunContext, RunResult, losses_as_floats, validate_fields
from bot.art.technique import param as config_param  # aliased: one field below is called `param`
from bot.art.techniques.imagine import ImagineConfig, guide_config, prompt_targets

# What can be compared, and the type of its values.
SETTING_TYPES: dict[str, type] = {"param": str, "lr": float, "cutn": int, "tv_weight": float, "seed": int}
# The values tried when none are given; seeds default to the job's seed and the ones after it.
DEFAULT_VALUES = {"param": ", ".join(PARAMETERIZATIONS), "lr": "0.01, 0.05, 0.2", "cutn": "4, 16, 64",
                  "tv_weight": "0, 0.05, 0.5"}
DEFAULT_SEED_COUNT = 3
MIN_VARIANTS, MAX_VARIANTS = 2, 4
SEED_MAX = 2**31 - 1  # the largest seed a person may type, as in bot/jobs/parser.py
STATUS_TILE_SIDE = 192  # each variant's square in the side-by-side status image
SHEET_TILE_SIDES = (192, 512)  # each variant's square on the final sheet: its size, within these
SHEET_TITLE_LINES = 4


def _as_in_imagine(name: str) -> Any:
    """A field declared as ImagineConfig's: the same default, range, help and server limit."""
    field = next(field for field in dataclasses.fields(ImagineConfig) if field.name == name)
    return dataclasses.field(default=field.default, metadata=field.metadata)


def value_text(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def setting_text(name: str, value: object) -> str:
    """One setting as the sheet shows it: "lr 0.05", "tv-weight 0", "param fourier"."""
    return f"{name.replace('_', '-')} {value_text(value)}"


@dataclass(frozen=True)
class Variant:
    setting: str  # the compared setting, e.g. "lr"
    value: Any  # its value in this variant, e.g. 0.05
    config: ImagineConfig
    seed: int

    @property
    def label(self) -> str:
        return setting_text(self.setting, self.value)


@dataclass(frozen=True)
class CompareConfig:
    prompt: str = _as_in_imagine("prompt")
    what: str = config_param(
        MISSING, choices=tuple(SETTING_TYPES),
        help="the setting to compare: param (the three parameterisations), lr, cutn, tv_weight or seed",
    )
    values: str | None = config_param(
        None, help=f"the {MIN_VARIANTS} to {MAX_VARIANTS} values to try, e.g. `0.01, 0.05, 0.2`; "
                   "by default a spread that suits `what`",
    )
    negative: str = _as_in_imagine("negative")
    steps: int = _as_in_imagine("steps")
    size: int = _as_in_imagine("size")
    param: str = _as_in_imagine("param")
    cutn: int = _as_in_imagine("cutn")
    lr: float = _as_in_imagine("lr")
    tv_weight: float = _as_in_imagine("tv_weight")

    def __post_init__(self) -> None:
        validate_fields(self)
        self.variants(seed=0)  # raises ValueError saying which value is wrong and why

    def base(self) -> ImagineConfig:
        """The recipe every variant starts from, as an imagine job."""
        return ImagineConfig(prompt=self.prompt, negative=self.negative, steps=self.steps, size=self.size,
                             param=self.param, cutn=self.cutn, lr=self.lr, tv_weight=self.tv_weight)

    def variants(self, seed: int) -> list[Variant]:
        """One imagine job per value of the compared setting; `seed` is the job's."""
        base = self.base()
        values = self._values()
        if self.what == "seed":
            seeds = values or [(seed + offset) % (SEED_MAX + 1) for offset in range(DEFAULT_SEED_COUNT)]
            return [Variant("seed", value, base, value) for value in seeds]
        variants = []
        for value in values:
            try:
                config = dataclasses.replace(base, **{self.what: value})
            except ValueError as error:  # ImagineConfig's own range, e.g. "lr must be between ..."
                raise ValueError(f"--values: {error}") from None
            variants.append(Variant(self.what, value, config, seed))
        return variants

    def _values(self) -> list[Any]:
        """The values to try as the setting's type, each once; [] for the default seeds."""
        if self.values is None and self.what == "seed":
            return []
        text = self.values if self.values is not None else DEFAULT_VALUES[self.what]
        words = [word for word in re.split(r"[,\s]+", text) if word]
        setting = self.what.replace("_", "-")
        if not MIN_VARIANTS <= len(words) <= MAX_VARIANTS:
            raise ValueError(f"--values takes {MIN_VARIANTS} to {MAX_VARIANTS} values of {setting} to compare, "
                             f"separated by commas, e.g. `{DEFAULT_VALUES.get(self.what, '1, 2, 3')}` "
                             f"(you gave {len(words)}).")
        kind = SETTING_TYPES[self.what]
        try:
            values = [word.lower() if kind is str else kind(word) for word in words]
        except ValueError:
            kind_text = "whole numbers" if kind is int else "numbers"
            raise ValueError(f"--values for {setting} must be {kind_text}, separated by commas "
                             f"(you gave {text!r}).") from None
        repeated = next((value for index, value in enumerate(values) if value in values[:index]), None)
        if repeated is not None:
            raise ValueError(f"--values has {setting_text(self.what, repeated)} twice; give each value once.")
        if self.what == "seed" and not all(0 <= value <= SEED_MAX for value in values):
            raise ValueError(f"--values: seeds must be between 0 and {SEED_MAX} (you gave {text!r}).")
        return values

    def used_values(self, seed: int) -> dict[str, Any]:
        """The fields as the job uses them, for its descriptions: the values it tries written out, and no
        base value for the compared setting (each variant has its own). `seed` is the job's."""
        used = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        used["values"] = ", ".join(value_text(variant.value) for variant in self.variants(seed))
        used.pop(self.what, None)  # `seed` is no field
        return used

    def times_counted(self, limit: str) -> int:
        """How many times this job counts against the server's limit `limit`: its steps once per variant."""
        return len(self.variants(seed=0)) if limit == "steps" else 1

    def sheet_title(self, seed: int) -> str:
        """The prompt, then the recipe the variants share (all but the compared setting), one line each."""
        shared = {"steps": self.steps, "size": self.size, "param": self.param, "cutn": self.cutn, "lr": self.lr,
                  "tv_weight": self.tv_weight, "seed": seed}
        del shared[self.what]
        lines = [self.prompt]
        if self.negative:
            lines.append(f"without: {self.negative}")
        lines.append(" · ".join(setting_text(name, value) for name, value in shared.items()))
        return "\n".join(lines)


class CompareJob:
    """One compare job between steps: an image per variant, and the side-by-side status frames."""

    def __init__(self, config: CompareConfig, seed: int, ctx: RunContext) -> None:
        self.started = time.perf_counter()
        self.config, self.seed, self.ctx = config, seed, ctx
        self.clip = ctx.models.clip()
        self.variants = config.variants(seed)
        goal = prompt_targets(config.base(), self.clip, ctx.device)  # every variant has the same prompts
        self.images = [GuidedImage(guide_config(variant.config), goal, variant.seed, ctx.device)
                       for variant in self.variants]
        self.frames: list[Image.Image] = []

    @property
    def done(self) -> bool:
        return all(image.done for image in self.images)

    def after_step(self) -> None:
        step, total = self.images[0].step, self.config.steps  # the variants move in step
        if step % self.ctx.progress_every == 0 or step == total:
            previews = [(preview_image(image.current(), max_side=STATUS_TILE_SIDE), variant.label)
                        for image, variant in zip(self.images, self.variants, strict=True)]
            status = captioned_grid(previews, tile_side=STATUS_TILE_SIDE, columns=len(previews))
            self.frames.append(status)
            losses = [image.losses[-1].item() for image in self.images]
            self.ctx.on_progress(step, total, status, {"loss": sum(losses) / len(losses)})

    def result(self, cancelled: bool) -> RunResult:
        """The contact sheet of the variants' final images; `losses` are the variants' mean per step."""
        losses = [losses_as_floats(image.losses) for image in self.images]  # per variant, one per step
        tiles = [(tensor_to_image(image.current()),
                  f"{variant.label} · loss {variant_losses[-1]:.3f}" if variant_losses else variant.label)
                 for image, variant, variant_losses in zip(self.images, self.variants, losses, strict=True)]
        low, high = SHEET_TILE_SIDES
        sheet = captioned_grid(tiles, tile_side=min(max(self.config.size, low), high), columns=len(tiles),
                               title=self.config.sheet_title(self.seed), max_title_lines=SHEET_TITLE_LINES)
        return RunResult(
            image=sheet,
            frames=self.frames,
            losses=[sum(step) / len(step) for step in zip(*losses, strict=True)],
            seconds=time.perf_counter() - self.started,
            steps_done=self.images[0].step,
            cancelled=cancelled,
            notes=["CLIP weights are random"] if self.clip.random_weights else [],
        )


class CompareTechnique:
    name = "compare"
    config_type = CompareConfig

    def start(self, config: CompareConfig, seed: int, ctx: RunContext) -> CompareJob:
        return CompareJob(config, seed, ctx)

    def estimated_bytes(self, config: CompareConfig, ctx: RunContext) -> int:
        clip = ctx.models.clip()
        return sum(estimated_bytes(guide_config(variant.config), clip) for variant in config.variants(seed=0))

    def run(self, config: CompareConfig, seed: int, ctx: RunContext) -> RunResult:
        return run_alone(self.start(config, seed, ctx), ctx)


TECHNIQUE = CompareTechnique()
