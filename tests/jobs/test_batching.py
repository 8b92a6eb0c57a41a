"""The GPU worker steps several imagine jobs together: same images as alone, fair and memory-aware admission,
an out-of-memory step fails only the job that joined, and other techniques run between batched steps."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bot.art.clip_guided import estimated_bytes
from bot.art.imagefiles import ImageRejected
from bot.art.models import ModelChoice
from bot.art.techniques.cppn import TECHNIQUE as CPPN
from bot.art.techniques.imagine import ImagineConfig, guide_config
from bot.jobs.spec import JobSpec
from bot.jobs.worker import OUT_OF_MEMORY, GpuWorker, JobFailed, JobOutput, ProgressEvent
from tests.art.test_clip_guided import RunsOutOfMemory

TINY_CLIP = {"clip_model": "easel-tiny", "clip_pretrained": "none"}


def make_worker(tmp_path: Path, **options) -> GpuWorker:
    return GpuWorker(ModelChoice(weights_dir=tmp_path, **TINY_CLIP), "cpu", tmp_path / "results", progress_every=1,
                     **options)


def imagine(seed: int, **changes) -> JobSpec:
    config = {"prompt": "a lighthouse | fog:0.5", "steps": 6, "size": 32, "cutn": 4} | changes
    return JobSpec("imagine", ImagineConfig(**config), seed)


class Timeline:
    """Every progress event and every end, in the order they reached the event loop."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int, int]] = []  # ("step", job, step) or ("end", job, 0)

    def progress(self, event: ProgressEvent) -> None:
        self.events.append(("step", event.job_id, event.step))

    async def run(self, worker: GpuWorker, job_id: int, spec: JobSpec,
                  cancel: threading.Event | None = None) -> JobOutput:
        try:
            return await worker.run(job_id, spec, self.progress, cancel or threading.Event())
        finally:
            self.events.append(("end", job_id, 0))

    def index(self, kind: str, job_id: int, step: int = 0) -> int:
        return self.events.index((kind, job_id, step))


async def until(condition) -> None:
    for _ in range(3000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise TimeoutError("the condition never came true")


async def run_alone(worker: GpuWorker, job_id: int, spec: JobSpec) -> JobOutput:
    """The job with nothing beside it (on the same worker, so on the same randomly initialised CLIP)."""
    return await worker.run(job_id, spec, lambda event: None, threading.Event())


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def assert_same_image(first: Path, second: Path) -> None:
    """Equal up to one level of 255: a batch's larger matrix multiply rounds a little differently."""
    assert np.abs(pixels(first) - pixels(second)).max() <= 1


async def test_two_jobs_step_together_and_each_gives_its_image_alone(tmp_path):
    worker = make_worker(tmp_path, batch_jobs=2)
    timeline = Timeline()
    try:
        solo_a = await run_alone(worker, 11, imagine(seed=1))
        solo_b = await run_alone(worker, 12, imagine(seed=2, size=48, param="fourier"))
        out_a, out_b = await asyncio.gather(timeline.run(worker, 1, imagine(seed=1)),
                                            timeline.run(worker, 2, imagine(seed=2, size=48, param="fourier")))
    finally:
        await asyncio.to_thread(worker.shutdown)
    # Both moved before either finished: they shared the steps.
    assert timeline.index("step", 2, 1) < timeline.index("end", 1)
    assert timeline.index("step", 1, 2) < timeline.index("end", 2)
    assert_same_image(out_a.image_path, solo_a.image_path)
    assert_same_image(out_b.image_path, solo_b.image_path)
    assert out_a.result.steps_done == out_b.result.steps_done == 6
    np.testing.assert_allclose(out_a.result.losses, solo_a.result.losses, atol=1e-4)


async def test_one_at_a_time_by_default_on_the_cpu(tmp_path):
    worker = make_worker(tmp_path)
    assert worker.batch_jobs == 1
    timeline = Timeline()
    try:
        await asyncio.gather(timeline.run(worker, 1, imagine(seed=1, steps=3)),
                             timeline.run(worker, 2, imagine(seed=2, steps=3)))
    finally:
        await asyncio.to_thread(worker.shutdown)
    assert timeline.index("end", 1) < timeline.index("step", 2, 1)


async def test_a_job_that_would_not_fit_in_memory_waits_for_room(tmp_path):
    worker = make_worker(tmp_path, batch_jobs=4)
    spec = imagine(seed=1, steps=4)
    one_job = estimated_bytes(guide_config(spec.config), worker.models.clip())
    worker.memory_budget = int(1.5 * one_job)  # room for one job, not two
    timeline = Timeline()
    try:
        first = asyncio.create_task(timeline.run(worker, 1, spec))
        await until(lambda: timeline.events)
        second = asyncio.create_task(timeline.run(worker, 2, imagine(seed=2, steps=4)))
        await until(lambda: worker.admission_blocked or first.done())
        assert worker.admission_blocked  # the runner claims nothing more meanwhile
        await asyncio.gather(first, second)
    finally:
        await asyncio.to_thread(worker.shutdown)
    assert timeline.index("end", 1) < timeline.index("step", 2, 1)
    assert not worker.admission_blocked


async def test_out_of_memory_fails_only_the_job_that_was_joining(tmp_path):
    worker = make_worker(tmp_path, batch_jobs=2)
    clip = worker.models.clip()
    worker.models._clip = dataclasses.replace(clip, model=RunsOutOfMemory(clip.model, max_cutouts=4))
    timeline = Timeline()
    try:
        solo = await run_alone(worker, 11, imagine(seed=1, steps=8))
        first = asyncio.create_task(timeline.run(worker, 1, imagine(seed=1, steps=8)))
        await until(lambda: timeline.events)
        with pytest.raises(JobFailed, match="ran out of memory"):
            await timeline.run(worker, 2, imagine(seed=2, steps=8))
        output = await first
    finally:
        await asyncio.to_thread(worker.shutdown)
    assert str(OUT_OF_MEMORY).startswith("The GPU ran out of memory")
    assert output.result.steps_done == 8 and not output.result.cancelled
    assert_same_image(output.image_path, solo.image_path)  # the failed step left no trace on it


async def test_other_techniques_run_between_batched_steps(tmp_path):
    worker = make_worker(tmp_path, batch_jobs=2)
    timeline = Timeline()
    try:
        long_job = asyncio.create_task(timeline.run(worker, 1, imagine(seed=1, steps=40)))
        await until(lambda: timeline.events)
        pattern = JobSpec("cppn", CPPN.config_type(size=16, steps=2), seed=3)
        await timeline.run(worker, 2, pattern)
        await long_job
    finally:
        await asyncio.to_thread(worker.shutdown)
    assert timeline.index("end", 2) < timeline.index("end", 1)
    assert timeline.index("end", 2) < timeline.index("step", 1, 40)


async def test_a_cancelled_job_leaves_the_batch_and_the_other_goes_on(tmp_path):
    worker = make_worker(tmp_path, batch_jobs=2)
    timeline = Timeline()
    cancel = threading.Event()
    try:
        stays = asyncio.create_task(timeline.run(worker, 1, imagine(seed=1, steps=12)))
        leaves = asyncio.create_task(timeline.run(worker, 2, imagine(seed=2, steps=12), cancel))
        await until(lambda: ("step", 2, 2) in timeline.events)
        cancel.set()
        cancelled, finished = await leaves, await stays
    finally:
        await asyncio.to_thread(worker.shutdown)
    assert cancelled.result.cancelled and cancelled.result.steps_done < 12
    assert not finished.result.cancelled and finished.result.steps_done == 12


def test_a_batch_on_a_gpu_is_sized_by_the_free_memory():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here: the GPU memory budget is measured only on a GPU")
    worker = GpuWorker(ModelChoice(**TINY_CLIP), "cuda", Path("unused"), progress_every=1)
    assert worker.batch_jobs == 8 and worker.memory_budget is None
    assert worker._fits(2**20, []) and not worker._fits(10 * 2**40, [])


async def test_a_job_that_cannot_start_fails_alone_and_the_one_behind_it_runs(tmp_path):
    worker = make_worker(tmp_path, batch_jobs=2)
    missing = imagine(seed=1, steps=2, init_image=str(tmp_path / "gone.png"))
    try:
        failing = asyncio.create_task(worker.run(1, missing, lambda event: None, threading.Event()))
        behind = asyncio.create_task(worker.run(2, imagine(seed=2, steps=2), lambda event: None, threading.Event()))
        with pytest.raises(ImageRejected):
            await asyncio.wait_for(failing, 60)
        output = await asyncio.wait_for(behind, 60)
    finally:
        await asyncio.to_thread(worker.shutdown)
    assert output.result.steps_done == 2
