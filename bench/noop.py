"""A technique that does no work, for benchmarks of everything around the GPU (registered at runtime)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from PIL import Image

from bot.art.technique import RunContext, RunResult, param
from bot.art.techniques import TECHNIQUES


@dataclass(frozen=True)
class NoopConfig:
    size: int = param(32, help="side of the (flat) image in pixels", min=16, max=4096, limit="size")
    steps: int = param(10, help="steps to pretend to run", min=1, max=100_000, limit="steps")
    step_ms: float = param(0.0, help="milliseconds to sleep per step", min=0.0, max=1000.0)


class NoopTechnique:
    """Returns a flat image, two frames and a loss per step at once (or after step_ms per step)."""

    name = "noop"
    config_type = NoopConfig

    def run(self, config: NoopConfig, seed: int, ctx: RunContext) -> RunResult:
        started = time.monotonic()
        side = config.size
        first = Image.new("RGB", (side, side), (seed % 256, 40, 90))
        last = Image.new("RGB", (side, side), (90, seed % 256, 40))
        losses: list[float] = []
        steps_done, cancelled = 0, False
        for step in range(1, config.steps + 1):
            if ctx.should_cancel():
                cancelled = True
                break
            if config.step_ms:
                time.sleep(config.step_ms / 1000)
            losses.append(1.0 / step)
            steps_done = step
            if step % ctx.progress_every == 0 or step == config.steps:
                ctx.on_progress(step, config.steps, last, {"loss": losses[-1]})
        return RunResult(image=last, frames=[first, last], losses=losses, seconds=time.monotonic() - started,
                         steps_done=steps_done, cancelled=cancelled)


def register_noop() -> None:
    TECHNIQUES["noop"] = NoopTechnique()  # type: ignore[assignment]
