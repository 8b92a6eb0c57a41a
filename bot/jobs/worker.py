"""The GPU worker: one thread that owns torch and runs the jobs, several of them in one batch.

It never touches the database or Discord. Progress reaches the event loop through
`loop.call_soon_threadsafe`; a job stops between steps once its cancel flag is set.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from PIL import Image

from bot.art.charts import loss_chart
from bot.art.clip_guided import step_together
from bot.art.imagefiles import save_animation, save_png
from bot.art.models import ModelChoice, ModelStore, choose_device, make_deterministic
from bot.art.technique import BatchedTechnique, RunContext, RunResult, SteppedJob
from bot.art.techniques import WORKSPACE_TECHNIQUES, get_technique
from bot.jobs.spec import JobSpec

if TYPE_CHECKING:
    from bot.settings import Settings


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


# Jobs stepped together by default: on a GPU, as many as fit (memory decides); on the CPU one at a
# time, where a batch only shares overheads and each person would wait longer for their image.
DEFAULT_BATCH_JOBS = {"cuda": 8, "cpu": 1}
GPU_MEMORY_SHARE = 0.85  # of the GPU memory free when a batch starts, what its jobs may plan to use
OUT_OF_MEMORY = "The GPU ran out of memory. Try a smaller size, fewer cutouts (--cutn) or fewer steps."


@dataclass(eq=False)
class Arrival:
    """A job handed to the GPU thread, and the future on the event loop that gets its outcome."""

    job_id: int
    spec: JobSpec
    context: RunContext
    future: asyncio.Future[JobOutput]
    loop: asyncio.AbstractEventLoop

    def settle(self, outcome: JobOutput | BaseException) -> None:
        """Hands the outcome to the event loop (from the GPU thread)."""
        def set_outcome() -> None:
            if self.future.done():
                return
            if isinstance(outcome, BaseException):
                self.future.set_exception(outcome)
            else:
                self.future.set_result(outcome)
        self.loop.call_soon_threadsafe(set_outcome)


@dataclass(eq=False)
class BatchMember:
    arrival: Arrival
    job: SteppedJob
    estimated_bytes: int
    joining: bool = True  # it has not finished a step in the batch yet


class GpuWorker:
    """Owns the device. One thread runs every job: jobs of batched techniques (`imagine`, `compare`)
    step together, up to `batch_jobs` of them; any other job runs alone between two batched steps.

    Jobs join the batch in the order they arrive, which is the queue's fair order. A job that would
    not fit in memory beside the running ones waits (and everything behind it) until one finishes;
    `admission_blocked` tells the runner to claim nothing more meanwhile.
    """

    def __init__(self, choice: ModelChoice, device_name: str, results_dir: Path, progress_every: int, *,
                 batch_jobs: int = 0, memory_budget_mb: int = 0, workspace: Path | None = None) -> None:
        self.device = choose_device(device_name)
        make_deterministic(self.device)
        self.models = ModelStore(choice, self.device)
        self.results_dir = results_dir
        self.progress_every = progress_every
        self.batch_jobs = batch_jobs or DEFAULT_BATCH_JOBS.get(self.device.type, 1)
        self.memory_budget = memory_budget_mb * 2**20 or None  # None: measured on a GPU, no cap on the CPU
        self.workspace = workspace  # None: this worker cannot run jobs that keep state between chunks
        self.admission_blocked = False
        self._arrivals: queue.SimpleQueue[Arrival | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(cls, settings: Settings, results_dir: Path, workspace: Path | None = None) -> GpuWorker:
        return cls(ModelChoice.from_settings(settings), settings.device, results_dir, settings.progress_every,
                   batch_jobs=settings.batch_jobs, memory_budget_mb=settings.batch_memory_mb, workspace=workspace)

    async def run(
        self,
        job_id: int,
        spec: JobSpec,
        on_progress: Callable[[ProgressEvent], None],
        cancel: threading.Event,
    ) -> JobOutput:
        """Runs the job on the GPU thread; `on_progress` is called on the event loop."""
        loop = asyncio.get_running_loop()

        def report(step: int, total: int, preview: Image.Image, metrics: dict[str, float]) -> None:
            loop.call_soon_threadsafe(on_progress, ProgressEvent(job_id, step, total, preview, dict(metrics)))

        context = RunContext(
            device=self.device, models=self.models, on_progress=report,
            should_cancel=cancel.is_set, progress_every=self.progress_every, workspace=self.workspace,
        )
        if self._thread is None:
            self._thread = threading.Thread(target=self._gpu_loop, name="easel-gpu", daemon=True)
            self._thread.start()
        arrival = Arrival(job_id, spec, context, loop.create_future(), loop)
        self._arrivals.put(arrival)
        return await arrival.future

    def cannot_run(self) -> frozenset[str]:
        """Techniques this worker leaves to others: jobs on trained generators need the bot's disk."""
        return frozenset() if self.workspace is not None else WORKSPACE_TECHNIQUES

    def describe(self) -> list[str]:
        return self.models.describe()

    def shutdown(self) -> None:
        """Lets the jobs on the GPU thread end (the runner has asked them to stop) and ends the thread."""
        if self._thread is not None:
            self._arrivals.put(None)
            self._thread.join()

    # Everything below runs on the GPU thread.

    def _gpu_loop(self) -> None:
        batch: list[BatchMember] = []
        waiting: deque[Arrival] = deque()
        stopping = False
        while not (stopping and not batch and not waiting):
            stopping |= self._take_arrivals(waiting, block=not batch and not waiting and not stopping)
            self._admit(waiting, batch)
            if batch:
                self._step(batch)

    def _take_arrivals(self, waiting: deque[Arrival], block: bool) -> bool:
        """Moves newly arrived jobs to `waiting`; True once `shutdown` was called."""
        try:
            arrival = self._arrivals.get(block=block)
            while True:
                if arrival is None:
                    return True
                waiting.append(arrival)
                arrival = self._arrivals.get_nowait()
        except queue.Empty:
            return False

    def _admit(self, waiting: deque[Arrival], batch: list[BatchMember]) -> None:
        """Starts waiting jobs in order: a batched one joins the batch if it fits, any other runs now."""
        while waiting:
            arrival = waiting[0]
            technique = get_technique(arrival.spec.technique)
            if not isinstance(technique, BatchedTechnique):
                waiting.popleft()
                arrival.settle(self._run_alone(arrival))
                continue
            try:
                needs = technique.estimated_bytes(arrival.spec.config, arrival.context)
            except Exception as error:  # its model cannot load, say
                waiting.popleft()
                arrival.settle(self._explained(error))
                continue
            if batch and not self._fits(needs, batch):
                break
            waiting.popleft()
            try:
                job = technique.start(arrival.spec.config, arrival.spec.seed, arrival.context)
            except Exception as error:  # an input image it cannot read, say
                arrival.settle(self._explained(error))
                continue
            batch.append(BatchMember(arrival, job, needs))
        self.admission_blocked = bool(waiting)

    def _fits(self, needs: int, batch: list[BatchMember]) -> bool:
        if len(batch) >= self.batch_jobs:
            return False
        budget = self.memory_budget
        if budget is None and self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            budget = int(GPU_MEMORY_SHARE * free) + sum(member.estimated_bytes for member in batch)
        return budget is None or sum(member.estimated_bytes for member in batch) + needs <= budget

    def _step(self, batch: list[BatchMember]) -> None:
        """One step of every job in the batch; jobs that end leave it."""
        for member in [member for member in batch if member.arrival.context.should_cancel()]:
            batch.remove(member)
            self._finish(member, cancelled=True)
        if not batch:
            return
        try:
            step_together([image for member in batch for image in member.job.images],
                          self.models.clip(), self.device)
        except torch.OutOfMemoryError as error:
            joining = [member for member in batch if member.joining] or batch[-1:]
            for member in joining:  # the others have not moved: they step again without it
                batch.remove(member)
                member.arrival.settle(self._explained(error))
            return
        except Exception as error:
            for member in batch:
                member.arrival.settle(error)
            batch.clear()
            return
        for member in list(batch):
            member.joining = False
            try:
                member.job.after_step()
            except Exception as error:
                batch.remove(member)
                member.arrival.settle(error)
                continue
            if member.job.done:
                batch.remove(member)
                self._finish(member, cancelled=False)

    def _finish(self, member: BatchMember, cancelled: bool) -> None:
        arrival = member.arrival
        try:
            arrival.settle(self._save(arrival.job_id, arrival.spec, member.job.result(cancelled)))
        except Exception as error:
            arrival.settle(error)

    def _run_alone(self, arrival: Arrival) -> JobOutput | BaseException:
        try:
            result = get_technique(arrival.spec.technique).run(arrival.spec.config, arrival.spec.seed,
                                                               arrival.context)
            return self._save(arrival.job_id, arrival.spec, result)
        except Exception as error:
            return self._explained(error)

    def _explained(self, error: Exception) -> Exception:
        """A CUDA out-of-memory error as a message its author can act on; any other error as it is."""
        if not isinstance(error, torch.OutOfMemoryError):
            return error
        self._free_cached_memory()
        explained = JobFailed(OUT_OF_MEMORY)
        explained.__cause__ = error  # the log keeps where it happened
        return explained

    def _free_cached_memory(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def _save(self, job_id: int, spec: JobSpec, result: RunResult) -> JobOutput:
        folder = self.results_dir / f"job-{job_id}"
        folder.mkdir(parents=True, exist_ok=True)
        # A chunk's files are named for its step: the next chunk may run before they are posted.
        name = f"step-{result.steps_done}" if result.continues else "final"
        output = JobOutput(
            image_path=folder / f"{name}.png",
            animation_path=folder / ("steps.gif" if name == "final" else f"{name}.gif"),
            chart_path=folder / ("loss.png" if name == "final" else f"{name}-loss.png"),
            result=result,
        )
        metadata = spec.png_metadata(device=str(self.device), job_id=job_id, image_size=result.image.size)
        save_png(result.image, output.image_path, metadata)
        save_animation(result.frames or [result.image], output.animation_path, hold_last=not result.loops)
        (result.chart or loss_chart(result.losses)).save(output.chart_path)
        return output
