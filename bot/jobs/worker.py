"""The GPU worker: one thread that owns torch and runs one job at a time.

It never touches the database or Discord. Progress reaches the event loop through
`loop.call_soon_threadsafe`; a job stops between steps once its cancel flag is set.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from bot.art.charts import loss_chart
from bot.art.imagefiles import save_animation, save_png
from bot.art.models import ModelChoice, ModelStore, choose_device, make_deterministic
from bot.art.technique import RunContext, RunResult
from bot.art.techniques import get_technique
from bot.jobs.spec import JobSpec


class JobFailed(RuntimeError):
    """A job failed in a way its author can act on; the message says how."""


@dataclass(frozen=True)
class ProgressEvent:
    job_id: int
    step: int
    total: int
    preview: Image.Image
    metrics: dict[str, float]
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class JobOutput:
    """What a finished run left on disk, and its figures."""

    image_path: Path
    animation_path: Path
    chart_path: Path
    result: RunResult

    def metrics(self) -> dict[str, object]:
        losses = self.result.losses
        return {
            "seconds": round(self.result.seconds, 3),
            "steps_done": self.result.steps_done,
            "final_loss": losses[-1] if losses else None,
            "notes": self.result.notes,
        }


class GpuWorker:
    def __init__(self, choice: ModelChoice, device_name: str, results_dir: Path, progress_every: int) -> None:
        self.device = choose_device(device_name)
        make_deterministic(self.device)
        self.models = ModelStore(choice, self.device)
        self.results_dir = results_dir
        self.progress_every = progress_every
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="easel-gpu")

    async def run(
        self,
        job_id: int,
        spec: JobSpec,
        on_progress: Callable[[ProgressEvent], None],
        cancel: threading.Event,
    ) -> JobOutput:
        """Runs the job on the worker thread; `on_progress` is called on the event loop."""
        loop = asyncio.get_running_loop()

        def report(step: int, total: int, preview: Image.Image, metrics: dict[str, float]) -> None:
            loop.call_soon_threadsafe(on_progress, ProgressEvent(job_id, step, total, preview, dict(metrics)))

        context = RunContext(
            device=self.device, models=self.models, on_progress=report,
            should_cancel=cancel.is_set, progress_every=self.progress_every,
        )
        return await loop.run_in_executor(self._executor, self._run_and_save, job_id, spec, context)

    def _run_and_save(self, job_id: int, spec: JobSpec, context: RunContext) -> JobOutput:
        try:
            result = get_technique(spec.technique).run(spec.config, spec.seed, context)
        except torch.OutOfMemoryError as error:
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            raise JobFailed(
                "The GPU ran out of memory. Try a smaller size, fewer cutouts (--cutn) or fewer steps."
            ) from error
        folder = self.results_dir / f"job-{job_id}"
        folder.mkdir(parents=True, exist_ok=True)
        output = JobOutput(
            image_path=folder / "final.png",
            animation_path=folder / "steps.gif",
            chart_path=folder / "loss.png",
            result=result,
        )
        metadata = spec.png_metadata(device=str(self.device), job_id=job_id, image_size=result.image.size)
        save_png(result.image, output.image_path, metadata)
        save_animation(result.frames or [result.image], output.animation_path)
        loss_chart(result.losses).save(output.chart_path)
        return output

    def describe(self) -> list[str]:
        return self.models.describe()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
