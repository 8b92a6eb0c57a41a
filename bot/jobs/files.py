"""A job's files on the way to the worker and back: its input images and its results.

The bot's own worker shares the bot's disk (`LocalFiles`): it reads the input images where they are
stored and leaves the results in the bot's results folder. A worker on another machine shares no
disk with the bot (`DatabaseFiles`): the input images reach it as `job_inputs` rows, written when the
job is queued, and it puts its results' bytes in `job_outputs` rows; the bot writes those into its
results folder before posting (`materialize`) and deletes them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from pathlib import Path
from typing import Protocol

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.jobs.spec import JobSpec
from bot.jobs.worker import JobOutput
from models import Job, JobInput
from models import JobOutput as StoredOutput

FINAL, ANIMATION, CHART = "final.png", "steps.gif", "loss.png"  # what a result folder holds


class JobFiles(Protocol):
    async def prepare(self, job_id: int, spec: JobSpec) -> JobSpec:
        """The spec with input image paths that this worker can read."""
        ...

    async def keep(self, job_id: int, output: JobOutput) -> dict[str, str | None]:
        """Keeps a finished job's files; returns the job row's `result_path` and `animation_path`."""
        ...


class LocalFiles:
    async def prepare(self, job_id: int, spec: JobSpec) -> JobSpec:
        return spec

    async def keep(self, job_id: int, output: JobOutput) -> dict[str, str | None]:
        return {"result_path": str(output.image_path), "animation_path": str(output.animation_path)}


class DatabaseFiles:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], folder: Path) -> None:
        self.sessions = sessions
        self.folder = folder  # this worker's scratch space for input images

    async def prepare(self, job_id: int, spec: JobSpec) -> JobSpec:
        if not spec.image_paths():
            return spec
        async with self.sessions() as session:
            rows = dict((await session.execute(select(JobInput.field, JobInput.data)
                                               .where(JobInput.job_id == job_id))).all())
        folder = self.folder / f"job-{job_id}"

        def write() -> dict[str, str]:
            folder.mkdir(parents=True, exist_ok=True)
            paths = {}
            for field in spec.image_paths():
                if field in rows:  # a field name of the spec, never a path from a row
                    (folder / field).write_bytes(rows[field])
                    paths[field] = str(folder / field)
            return paths

        paths = await asyncio.to_thread(write)
        return dataclasses.replace(spec, config=dataclasses.replace(spec.config, **paths))

    async def keep(self, job_id: int, output: JobOutput) -> dict[str, str | None]:
        files = {FINAL: output.image_path, ANIMATION: output.animation_path, CHART: output.chart_path}
        stored = await asyncio.to_thread(lambda: {name: path.read_bytes() for name, path in files.items()
                                                  if path.exists()})
        async with self.sessions.begin() as session:
            await session.execute(delete(StoredOutput).where(StoredOutput.job_id == job_id))  # an earlier try's
            session.add_all(StoredOutput(job_id=job_id, name=name, data=data) for name, data in stored.items())
        await asyncio.to_thread(shutil.rmtree, output.image_path.parent, True)  # the worker keeps nothing
        await asyncio.to_thread(shutil.rmtree, self.folder / f"job-{job_id}", True)
        return {"result_path": None, "animation_path": None}


async def read_inputs(spec: JobSpec) -> dict[str, bytes]:
    """The bytes of a job's input images by field, for its `job_inputs` rows (a worker elsewhere reads them)."""
    return await asyncio.to_thread(lambda: {field: Path(path).read_bytes()
                                            for field, path in spec.image_paths().items()})


async def materialize(sessions: async_sessionmaker[AsyncSession], results_dir: Path, job: Job) -> Job:
    """A done job whose files are still in the database gets them in the bot's results folder.

    Returns the job with its paths; the rows go once the files are written.
    """
    if job.result_path is not None:
        return job
    async with sessions() as session:
        rows = dict((await session.execute(select(StoredOutput.name, StoredOutput.data)
                                           .where(StoredOutput.job_id == job.id))).all())
    if FINAL not in rows:
        return job  # nothing stored: the publisher says that the image is gone
    folder = results_dir / f"job-{job.id}"

    def write() -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name in (FINAL, ANIMATION, CHART):  # fixed names: a row never picks a path
            if name in rows:
                (folder / name).write_bytes(rows[name])

    await asyncio.to_thread(write)
    paths = {"result_path": str(folder / FINAL),
             "animation_path": str(folder / ANIMATION) if ANIMATION in rows else None}
    async with sessions.begin() as session:
        await session.execute(update(Job).where(Job.id == job.id).values(**paths))
        await session.execute(delete(StoredOutput).where(StoredOutput.job_id == job.id))
    job.result_path, job.animation_path = paths["result_path"], paths["animation_path"]
    return job
