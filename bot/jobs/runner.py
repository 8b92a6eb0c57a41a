"""The loop that feeds the GPU worker: claim jobs while it has room, run each, record the outcomes.

It runs on the event loop and is the only place that moves jobs out of `running`. It claims each job
with a lease and renews it while the job runs; it records an outcome only while the job is still its
own. What people see of a job is left to a `JobViews`: the Discord publisher when the bot runs its own
worker, job events in the database for a worker on another machine (see bot/jobs/events.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from bot.art.imagefiles import ImageRejected
from bot.art.technique import MissingWeightsError
from bot.jobs.files import JobFiles
from bot.jobs.ordered import UpdatesInOrder
from bot.jobs.parser import SpecError
from bot.jobs.repository import IllegalTransition, JobRepository
from bot.jobs.spec import JobSpec
from bot.jobs.worker import GpuWorker, JobFailed, JobOutput, ProgressEvent
from bot.jobs.workers import Lease, WorkerRegistry
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
    async def job_requeued(self, job: Job) -> None: ...
    async def job_chunk_done(self, job: Job, output: JobOutput) -> None: ...  # back in the queue for its next chunk


def explain_failure(error: BaseException) -> str:
    """A short explanation for the job's author; the log keeps the traceback.

    Only errors written for people pass their message on; anything else could show internals.
    """
    if isinstance(error, JobFailed | MissingWeightsError | ImageRejected | SpecError):
        message = str(error)
        return message if len(message) <= MAX_EXPLANATION_CHARS else message[: MAX_EXPLANATION_CHARS - 1] + "…"
    return f"The job failed with {type(error).__name__}. A host can find the details in the bot's log."


@dataclass(eq=False)
class RunningJob:
    job: Job
    cancel: threading.Event = field(default_factory=threading.Event)  # set: stop before the next step
    step: int = 0


class JobRunner:
    """Claims jobs while the GPU worker has room (up to its `batch_jobs`), each run as its own task."""

    def __init__(self, repository: JobRepository, worker: GpuWorker, views: JobViews, files: JobFiles,
                 registry: WorkerRegistry, *, lease: Lease,
                 wait_until_ready: Callable[[], Awaitable[object]] | None = None) -> None:
        self.repository = repository
        self.wait_until_ready = wait_until_ready  # the bot's own worker waits until Discord is connected
        self.worker = worker
        self.views = views
        self.files = files
        self.registry = registry
        self.worker_id = registry.worker_id
        self.lease = lease
        self.running: dict[int, RunningJob] = {}  # by job id, in the order they were claimed
        self._wake = asyncio.Event()
        self._stopping = False
        self._cancelled_by_people: set[int] = set()  # job ids; a person's cancel beats a shutdown's
        self._claiming = False  # a claim is under way: the job it returns may be cancelled already
        self._task: asyncio.Task[None] | None = None
        self._job_tasks: set[asyncio.Task[None]] = set()
        self._updates = UpdatesInOrder("easel-show")  # the GPU never waits for Discord
        self._connected = False
        self._heartbeat: asyncio.Task[None] | None = None
        self._heartbeat_stop = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run_forever(), name="easel-job-runner")
        self._heartbeat = asyncio.create_task(self._keep_lease(), name="easel-lease")

    def wake(self) -> None:
        """Tells the runner that a job was queued, a guild resumed or a running job ended."""
        self._wake.set()

    def step_of(self, job_id: int) -> int | None:
        """The step a job running here has reached; None when it does not run here."""
        running = self.running.get(job_id)
        return None if running is None else running.step

    def cancel(self, job_id: int) -> bool:
        """Asks a running job to stop before its next step (also when it is only about to start).

        False when this runner is not running the job: another worker runs it, or its row says
        `running` only because its outcome could not be recorded.
        """
        running = self.running.get(job_id)
        if running is None and not self._claiming:
            return False
        self._cancelled_by_people.add(job_id)
        if running is not None:
            running.cancel.set()
        return True

    async def stop(self) -> None:
        """Stops the running jobs between steps (they go back to the queue) and ends the loop."""
        self._stopping = True
        for running in self.running.values():
            running.cancel.set()
        self._wake.set()
        if self._task is not None:
            if not self._connected:
                self._task.cancel()  # still waiting for Discord: no job was started
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._updates.wait(SHUTDOWN_VIEWS_SECONDS)
        if self._heartbeat is not None:
            self._heartbeat_stop.set()
            await self._heartbeat  # not cancelled: a renewal cut off mid-query would break its connection
        await self.registry.remove()
        await asyncio.to_thread(self.worker.shutdown)

    async def _keep_lease(self) -> None:
        """Renews the running jobs' leases and the worker's own record; hands on cancels asked for elsewhere."""
        while not self._stopping:
            for running in list(self.running.values()):
                job = running.job
                try:
                    asked = await self.repository.renew_lease(job.id, self.worker_id, self.lease.length,
                                                              running.step)
                except Exception:  # the database is away: the lease may run out, and the job run elsewhere
                    log.warning("could not renew the lease of job %s", job.id, exc_info=True)
                    continue
                if asked is None and self.running.get(job.id) is running:
                    self._lose(running)
                elif asked:
                    self.cancel(job.id)
            try:
                await self.registry.heartbeat(next(iter(self.running), None))
            except Exception:
                log.warning("could not record that this worker is alive", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._heartbeat_stop.wait(), self.lease.renew_every)

    def _lose(self, running: RunningJob) -> None:
        """Stops a job that is no longer this worker's; its outcome then goes unrecorded (see `mine`)."""
        log.warning("job %s: its lease ran out and it is no longer this worker's; stopping it here", running.job.id)
        running.cancel.set()

    def _has_room(self) -> bool:
        return len(self.running) < self.worker.batch_jobs and not self.worker.admission_blocked

    async def _sleep_until_woken(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), IDLE_POLL_SECONDS)

    async def _run_forever(self) -> None:
        if self.wait_until_ready is not None:
            await self.wait_until_ready()
        self._connected = True
        while not self._stopping:
            self._wake.clear()  # before looking: a wake from now on is not missed
            if not self._has_room():
                await self._sleep_until_woken()
                continue
            self._claiming = True
            try:
                job = await self.repository.claim_next(self.worker_id, self.lease.length,
                                                       skip_techniques=self.worker.cannot_run())
            except Exception:
                log.exception("could not claim the next job")
                job = None
            finally:
                self._claiming = False
            if job is not None:
                self.running[job.id] = RunningJob(job)
            self._cancelled_by_people &= self.running.keys()  # a cancel that raced a claim of another job
            if job is None:
                await self._sleep_until_woken()
                continue
            task = asyncio.create_task(self._run_guarded(self.running[job.id]), name=f"easel-job-{job.id}")
            self._job_tasks.add(task)
            task.add_done_callback(self._job_ended)
        await asyncio.gather(*self._job_tasks)

    def _job_ended(self, task: asyncio.Task[None]) -> None:
        self._job_tasks.discard(task)
        self._wake.set()  # room for the next job

    async def _run_guarded(self, running: RunningJob) -> None:
        job = running.job
        try:
            await self._run_one(running)
        except IllegalTransition:
            log.warning("job %s is no longer this worker's (its lease ran out): its outcome is not recorded", job.id)
        except Exception:
            # Recording the outcome failed (the database, say). The row stays `running` until its
            # lease runs out and the bot puts it back in the queue; the runner goes on with other jobs.
            log.exception("could not record the outcome of job %s", job.id)
        finally:
            self.running.pop(job.id, None)
            self._cancelled_by_people.discard(job.id)

    async def _run_one(self, running: RunningJob) -> None:
        job, cancel = running.job, running.cancel
        if self._stopping or job.id in self._cancelled_by_people:
            cancel.set()  # asked to stop while it was being claimed: it ends before its first step
        mine = Job.worker_id == self.worker_id  # every outcome is recorded only while the job is still ours
        self._updates.add(job.id, self.views.job_started(job))

        def on_progress(event: ProgressEvent) -> None:
            running.step = event.step
            self.views.job_progress(job, event)

        try:
            spec = await self.files.prepare(job.id, JobSpec.from_dict(job.spec))
            output = await self.worker.run(job.id, spec, on_progress, cancel)
        except Exception as error:
            log.exception("job %s failed", job.id)
            message = explain_failure(error)
            failed = await self.repository.transition(job.id, JobStatus.RUNNING, JobStatus.FAILED, only_if=mine,
                                                      error=message)
            self._updates.add(job.id, self.views.job_failed(failed, message))
            return
        if output.result.cancelled and job.id in self._cancelled_by_people:
            cancelled = await self.repository.transition(job.id, JobStatus.RUNNING, JobStatus.CANCELLED,
                                                         only_if=mine)
            self._updates.add(job.id, self.views.job_cancelled(cancelled))
        elif output.result.cancelled:
            # Stopped by a shutdown, which is not a crash: the job goes back to the queue as it was.
            requeued = await self.repository.transition(job.id, JobStatus.RUNNING, JobStatus.QUEUED, only_if=mine,
                                                        attempts=max(0, job.attempts - 1),
                                                        progress_step=output.result.steps_done)
            self._updates.add(job.id, self.views.job_requeued(requeued))
        elif output.result.continues:
            # One chunk of a long job (training): the next chunk waits its turn in the queue like any job.
            waiting = await self.repository.transition(job.id, JobStatus.RUNNING, JobStatus.QUEUED, only_if=mine,
                                                       attempts=0, progress_step=output.result.steps_done)
            self._updates.add(job.id, self.views.job_chunk_done(waiting, output))
        else:
            await self._record_done(job, output)

    async def _record_done(self, job: Job, output: JobOutput) -> None:
        """Keeps the files where the bot can post them, then marks the job done."""
        paths = await self.files.keep(job.id, output)
        done = await self.repository.transition(
            job.id, JobStatus.RUNNING, JobStatus.DONE, only_if=Job.worker_id == self.worker_id,
            metrics=output.metrics(), progress_step=output.result.steps_done, **paths,
        )
        self._updates.add(job.id, self.views.job_done(done))
