"""The loop that feeds the GPU worker: claim the next job, run it, record the outcome.

It runs on the event loop and is the only place that moves jobs out of `running`. What people
see of a job is left to a `JobViews` (the Discord publisher, or a recorder in benchmarks).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Protocol

from bot.art.imagefiles import ImageRejected
from bot.art.technique import MissingWeightsError
from bot.jobs.parser import SpecError
from bot.jobs.repository import JobRepository
from bot.jobs.spec import JobSpec
from bot.jobs.worker import GpuWorker, JobFailed, ProgressEvent
from models import Job, JobStatus

log = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 5.0  # a safety net; new jobs wake the runner at once
SHUTDOWN_VIEWS_SECONDS = 15.0  # how long a shutdown waits for posts to Discord that are under way
MAX_EXPLANATION_CHARS = 300


class JobViews(Protocol):
    async def job_started(self, job: Job) -> None: ...
    def job_progress(self, job: Job, event: ProgressEvent) -> None: ...  # called on the loop; must not block
    async def job_done(self, job: Job) -> None: ...
    async def job_failed(self, job: Job, message: str) -> None: ...
    async def job_cancelled(self, job: Job) -> None: ...


def explain_failure(error: BaseException) -> str:
    """A short explanation for the job's author; the log keeps the traceback.

    Only errors written for people pass their message on; anything else could show internals.
    """
    if isinstance(error, JobFailed | MissingWeightsError | ImageRejected | SpecError):
        message = str(error)
        return message if len(message) <= MAX_EXPLANATION_CHARS else message[: MAX_EXPLANATION_CHARS - 1] + "…"
    return f"The job failed with {type(error).__name__}. A host can find the details in the bot's log."


class JobRunner:
    def __init__(self, repository: JobRepository, worker: GpuWorker, views: JobViews,
                 wait_until_ready: Callable[[], Awaitable[object]]) -> None:
        self.repository = repository
        self.wait_until_ready = wait_until_ready  # the first job waits until Discord is connected
        self.worker = worker
        self.views = views
        self.current: Job | None = None
        self.current_step = (0, 0)  # (step, total) of the running job
        self._wake = asyncio.Event()
        self._stopping = False
        self._cancel_flags: dict[int, threading.Event] = {}
        self._cancelled_by_people: set[int] = set()  # job ids; a person's cancel beats a shutdown's
        self._claiming = False  # a claim is under way: the job it returns may be cancelled already
        self._task: asyncio.Task[None] | None = None
        self._showing: dict[int, asyncio.Task[None]] = {}  # per job, its latest view update
        self._connected = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run_forever(), name="easel-job-runner")

    def wake(self) -> None:
        """Tells the runner that a job was queued or a guild resumed."""
        self._wake.set()

    def cancel(self, job_id: int) -> bool:
        """Asks a running job to stop before its next step (also when it is only about to start).

        False when this runner is not running the job: its row says `running` only because its
        outcome could not be recorded.
        """
        if not self._claiming and (self.current is None or self.current.id != job_id):
            return False
        self._cancelled_by_people.add(job_id)
        flag = self._cancel_flags.get(job_id)
        if flag is not None:
            flag.set()
        return True

    async def stop(self) -> None:
        """Stops the running job between steps (it goes back to the queue) and ends the loop."""
        self._stopping = True
        for flag in self._cancel_flags.values():
            flag.set()
        self._wake.set()
        if self._task is not None:
            if not self._connected:
                self._task.cancel()  # still waiting for Discord: no job was started
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._showing:
            await asyncio.wait(list(self._showing.values()), timeout=SHUTDOWN_VIEWS_SECONDS)
        await asyncio.to_thread(self.worker.shutdown)

    async def _run_forever(self) -> None:
        await self.wait_until_ready()
        self._connected = True
        while not self._stopping:
            self._claiming = True
            try:
                job = await self.repository.claim_next()
            except Exception:
                log.exception("could not claim the next job")
                job = None
            finally:
                self._claiming = False
            if job is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), IDLE_POLL_SECONDS)
                continue
            try:
                await self._run_one(job)
            except Exception:
                # Recording the outcome failed (the database, say). The row stays `running`, so the
                # next start puts it back in the queue; this loop goes on with the next job.
                log.exception("could not record the outcome of job %s", job.id)

    async def _run_one(self, job: Job) -> None:
        cancel = threading.Event()
        if self._stopping or job.id in self._cancelled_by_people:
            cancel.set()  # asked to stop while it was being claimed: it ends before its first step
        self._cancel_flags[job.id] = cancel
        self.current, self.current_step = job, (0, job.total_steps)
        try:
            self._show(job.id, self.views.job_started(job))

            def on_progress(event: ProgressEvent) -> None:
                self.current_step = (event.step, event.total)
                self.views.job_progress(job, event)

            try:
                output = await self.worker.run(job.id, JobSpec.from_dict(job.spec), on_progress, cancel)
            except Exception as error:
                log.exception("job %s failed", job.id)
                message = explain_failure(error)
                failed = await self.repository.transition(job.id, JobStatus.RUNNING, JobStatus.FAILED, error=message)
                self._show(job.id, self.views.job_failed(failed, message))
                return

            if output.result.cancelled and job.id in self._cancelled_by_people:
                cancelled = await self.repository.transition(job.id, JobStatus.RUNNING, JobStatus.CANCELLED)
                self._show(job.id, self.views.job_cancelled(cancelled))
            elif output.result.cancelled:
                # Stopped by a shutdown, which is not a crash: the job goes back to the queue as it was.
                await self.repository.transition(job.id, JobStatus.RUNNING, JobStatus.QUEUED,
                                                 attempts=max(0, job.attempts - 1))
            else:
                done = await self.repository.transition(
                    job.id, JobStatus.RUNNING, JobStatus.DONE,
                    result_path=str(output.image_path), animation_path=str(output.animation_path),
                    metrics=output.metrics(), progress_step=output.result.steps_done,
                )
                self._show(job.id, self.views.job_done(done))
        finally:
            self._cancel_flags.pop(job.id, None)
            self._cancelled_by_people.clear()  # one job runs at a time: any other id here is stale
            self.current = None

    def _show(self, job_id: int, update: Coroutine[object, object, None]) -> None:
        """Shows a job's change in the background, after its earlier changes: the GPU never waits for Discord.

        A view that fails (Discord down, say) is logged and the queue goes on; the job row is the truth.
        """
        previous = self._showing.get(job_id)

        async def after_previous() -> None:
            if previous is not None:
                await asyncio.wait({previous})
            try:
                await update
            except Exception:
                log.exception("could not show job %s's change on Discord", job_id)

        task = asyncio.create_task(after_previous(), name=f"easel-show-{job_id}")
        self._showing[job_id] = task
        task.add_done_callback(lambda done: self._showing.pop(job_id, None) if self._showing.get(job_id) is done
                               else None)
