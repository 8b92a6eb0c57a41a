"""The one interface every technique implements.

A technique takes its frozen config dataclass, a seed and a `RunContext`, runs step by step,
reports progress every `ctx.progress_every` steps and stops between steps once
`ctx.should_cancel()` is true. It returns a `RunResult`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

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
    workspace: Path | None = None  # where a job that runs in chunks keeps its state between them (training)


@dataclass
class RunResult:
    image: Image.Image
    frames: list[Image.Image]  # animation frames, oldest first
    losses: list[float]  # one per step done
    seconds: float
    steps_done: int
    cancelled: bool = False
    notes: list[str] = field(default_factory=list)  # e.g. "CLIP weights are random"
    continues: bool = False  # one chunk of a longer job is done: it goes back to the queue for the next
    chart: Image.Image | None = None  # a chart of its own, instead of the curve of `losses`
    loops: bool = False  # the frames are a seamless loop (a latent walk): no pause on the last one


class Technique(Protocol):
    name: str
    config_type: type  # a frozen dataclass whose fields carry `param(...)` metadata

    def run(self, config: Any, seed: int, ctx: RunContext) -> RunResult: ...


class SteppedJob(Protocol):
    """A job the worker moves one step at a time, in a batch with others (see bot/art/clip_guided.py)."""

    images: list[Any]  # the GuidedImages it moves each step; several for a /compare
    done: bool

    def after_step(self) -> None: ...  # reports progress when it is due
    def result(self, cancelled: bool) -> RunResult: ...


@runtime_checkable
class BatchedTechnique(Technique, Protocol):
    """A technique whose jobs can share their steps with other jobs on the same CLIP model."""

    def start(self, config: Any, seed: int, ctx: RunContext) -> SteppedJob: ...
    def estimated_bytes(self, config: Any, ctx: RunContext) -> int: ...


def losses_as_floats(losses: list[torch.Tensor]) -> list[float]:
    """Per-step 0-d loss tensors, kept on the device during the run, read back in one host sync."""
    return torch.stack(losses).tolist() if losses else []


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


def range_text(low: float | None, high: float | None) -> str:
    """"between 1 and 5000", "at least 0" or "at most 10"."""
    if low is not None and high is not None:
        return f"between {low:g} and {high:g}"
    return f"at least {low:g}" if low is not None else f"at most {high:g}"


def validate_fields(config: Any) -> None:
    """Check every field of a config dataclass against its `param(...)` min, max and choices.

    Every config calls this from `__post_init__`, so a config built directly (or from stored JSON)
    is held to the same ranges as one from the parser, with the same messages. None is skipped:
    it is the "not given" value of optional fields.
    """
    for spec in fields(config):
        value, meta = getattr(config, spec.name), spec.metadata
        label = (meta.get("flag") or spec.name).replace("_", "-")
        if value is None:
            continue
        choices = meta.get("choices")
        if choices and value not in choices:
            raise ValueError(f"{label} must be one of {', '.join(choices)} (you gave {value!r}).")
        low, high = meta.get("min"), meta.get("max")
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if is_number and ((low is not None and not value >= low) or (high is not None and not value <= high)):
            raise ValueError(f"{label} must be {range_text(low, high)} (you gave {value:g}).")
