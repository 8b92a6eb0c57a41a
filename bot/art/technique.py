"""The one interface every technique implements.

A technique takes its frozen config dataclass, a seed and a `RunContext`, runs step by step,
reports progress every `ctx.progress_every` steps and stops between steps once
`ctx.should_cancel()` is true. It returns a `RunResult`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from PIL import Image

# on_progress(step, total, preview, metrics): step counts from 1; preview is a small RGB image.
ProgressFn = Callable[[int, int, Image.Image, dict[str, float]], None]
CancelFn = Callable[[], bool]


class MissingWeightsError(RuntimeError):
    """A technique's model weights are not on this machine; the message says how to get them."""


@dataclass
class RunContext:
    device: torch.device
    models: Any  # bot.art.models.ModelStore: loads each network once per worker
    on_progress: ProgressFn = lambda step, total, preview, metrics: None
    should_cancel: CancelFn = lambda: False
    progress_every: int = 10


@dataclass
class RunResult:
    image: Image.Image
    frames: list[Image.Image]  # animation frames, oldest first
    losses: list[float]  # one per step done
    seconds: float
    steps_done: int
    cancelled: bool = False
    notes: list[str] = field(default_factory=list)  # e.g. "CLIP weights are random"


class Technique(Protocol):
    name: str
    config_type: type  # a frozen dataclass whose fields carry `param(...)` metadata

    def run(self, config: Any, seed: int, ctx: RunContext) -> RunResult: ...


def param(
    default: Any,
    *,
    help: str,
    min: float | None = None,
    max: float | None = None,
    choices: tuple[str, ...] | None = None,
    flag: str | None = None,
    limit: str | None = None,
    image: bool = False,
) -> Any:
    """A config field with what the parser needs to validate it.

    `flag` is the inline flag name when it differs from the field name (`--no` for
    `negative`); `limit` names a per-guild limit that caps the field (`"steps"` or `"size"`);
    `image` marks a field that holds the path of an input image.
    """
    return field(
        default=default,
        metadata={"help": help, "min": min, "max": max, "choices": choices, "flag": flag, "limit": limit,
                  "image": image},
    )
