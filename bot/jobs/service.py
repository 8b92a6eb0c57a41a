"""Generation jobs as the cogs see them: submit, cancel, look up, derive (re-roll, continue, remix).

Plain asyncio; it knows Discord only as ids. Every refusal is a `UserFacingError` whose message
says what was wrong and what to do.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bot.art.imagefiles import ImageRejected
from bot.art.models import ModelChoice, missing_weights
from bot.errors import UserFacingError
from bot.guilds import GuildConfig, GuildService
from bot.jobs.parser import Limits, SpecError, parse_job
from bot.jobs.repository import IllegalTransition, JobRepository
from bot.jobs.scheduler import estimated_waits
from bot.jobs.spec import JobSpec
from bot.jobs.uploads import UploadStore
from bot.moderation import ModerationService
from bot.settings import Settings
from models import Job, JobStatus

if TYPE_CHECKING:
    from bot.jobs.runner import JobRunner, JobViews

log = logging.getLogger(__name__)

# Where a finished image goes when a job is continued: the field that takes the starting image.
CONTINUE_FROM_FIELD = {"imagine": "init_image", "dream": "image", "style": "content"}
TITLE_LENGTH = 90


@dataclass(frozen=True)
class JobRequest:
    """What a person asked for, straight from a slash command, a button or a modal."""

    technique: str
    user_id: int
    channel_id: int
    guild_id: int | None
    is_host: bool = False
    options: dict[str, object] = field(default_factory=dict)  # slash options by field name; None = not given
    text: str | None = None  # a prompt, possibly with inline --flags
    images: dict[str, bytes] = field(default_factory=dict)  # field name -> attached bytes
    seed: int | None = None
    parent_job_id: int | None = None


@dataclass(frozen=True)
class Place:
    """Where a queued job stands: its position (1 = next) and the seconds until it starts.

    `position` is None when the job is not waiting to run: it started, or its server's queue is paused.
    """

    position: int | None
    wait_seconds: float = 0.0
    paused: bool = False


@dataclass(frozen=True)
class Receipt:
    job: Job
    place: Place
    notes: list[str]


@dataclass(frozen=True)
class QueueView:
    mine: list[tuple[Job, Place]]
    queue_length: int
    running: Job | None


class JobService:
    def __init__(self, settings: Settings, repository: JobRepository, guilds: GuildService,
                 moderation: ModerationService, uploads: UploadStore) -> None:
        self.settings = settings
        self.model_choice = ModelChoice.from_settings(settings)
        self.repository = repository
        self.guilds = guilds
        self.moderation = moderation
        self.uploads = uploads
        self.runner: JobRunner | None = None  # set by the bot once the worker exists
        self.views: JobViews | None = None  # how jobs are shown (the Discord publisher)
        self._submitting: dict[int, asyncio.Lock] = {}  # per person: the cap is checked and used at once

    async def submit(self, request: JobRequest) -> Receipt:
        """Validates a request and stores it as a queued job; nothing is stored when it is refused."""
        async with self._submitting.setdefault(request.user_id, asyncio.Lock()):
            return await self._submit(request)

    async def _submit(self, request: JobRequest) -> Receipt:
        said = " ".join(str(value) for value in (request.text, *request.options.values()) if isinstance(value, str))
        if request.guild_id is not None and said:
            matched = await self.moderation.check(request.guild_id, said)
            if matched is not None:
                await self.moderation.log_refusal(request.guild_id, request.user_id, request.channel_id, said, matched)
                raise UserFacingError(
                    "This server's hosts do not allow that prompt, so it was not queued. "
                    "Please change it and try again."
                )

        missing = missing_weights(self.model_choice, request.technique)
        if missing is not None:
            raise UserFacingError(f"/{request.technique} cannot run on this bot yet. For a host: {missing}")

        waiting = await self.repository.count_with_status(JobStatus.QUEUED, user_id=request.user_id)
        if waiting >= self.settings.max_queued_per_user:
            raise UserFacingError(
                f"You already have {waiting} jobs waiting, the most this bot takes from one person. "
                "Wait for one to start, or cancel one with /cancel."
            )

        options = dict(request.options)
        try:
            for name, data in request.images.items():
                options[name] = str(await asyncio.to_thread(self.uploads.save, data))  # decoding takes a while
        except ImageRejected as error:
            raise UserFacingError(str(error)) from None
        config = await self.guilds.get(request.guild_id) if request.guild_id is not None else None
        limits = self.limits_for(config)
        try:
            parsed = parse_job(request.technique, options, limits=limits, text=request.text, seed=request.seed)
        except SpecError as error:
            raise UserFacingError(str(error)) from None
        self._check_image_paths(parsed.spec)

        # With a workshop channel configured, every job's thread goes there, wherever it was asked for.
        channel_id = (config and config.workshop_channel_id) or request.channel_id
        job = await self.repository.add(Job(
            guild_id=request.guild_id, channel_id=channel_id, user_id=request.user_id,
            technique=parsed.spec.technique, spec=parsed.spec.to_dict(), seed=parsed.spec.seed,
            title=job_title(parsed.spec), host_lane=request.is_host, parent_job_id=request.parent_job_id,
            total_steps=getattr(parsed.spec.config, "steps", 0),
        ))
        if self.runner is not None:
            self.runner.wake()
        return Receipt(job=job, place=await self.place_of(job), notes=parsed.notes)

    def _check_image_paths(self, spec: JobSpec) -> None:
        """Input images must be uploads or earlier results: a path typed in a flag would read the server's files."""
        allowed = [self.uploads.folder.resolve(), (self.settings.data_dir / "results").resolve()]
        for name, value in spec.image_paths().items():
            if not any(Path(value).resolve().is_relative_to(folder) for folder in allowed):
                raise UserFacingError(
                    f"`{name}` takes an image you attach, not a file name: attach it with the command's "
                    f"`{name}` option."
                )

    def limits_for(self, config: GuildConfig | None) -> Limits:
        """The bot's limits, lowered by the guild's own where its hosts set them."""
        return Limits(
            max_steps=min(self.settings.max_steps, (config and config.max_steps) or self.settings.max_steps),
            max_size=min(self.settings.max_size, (config and config.max_size) or self.settings.max_size),
            clamp=self.settings.clamp_out_of_range,
        )

    async def _queue_places(self) -> dict[int, Place]:
        """The place of every job waiting to run, by job id."""
        running_left = await self._running_seconds_left()  # read before the queue: a job may start meanwhile
        ordered = await self.repository.queued_in_order()
        waits = estimated_waits(ordered, running_left)
        return {queued.id: Place(index + 1, waits[queued.id]) for index, queued in enumerate(ordered)}

    async def place_of(self, job: Job) -> Place:
        place = (await self._queue_places()).get(job.id)
        if place is not None:
            return place
        config = await self.guilds.get(job.guild_id) if job.guild_id is not None else None
        return Place(None, paused=bool(config and config.queue_paused and job.status == JobStatus.QUEUED))

    async def _running_seconds_left(self) -> float:
        running = await self.repository.running()
        if running is None:
            return 0.0
        step = 0
        if self.runner is not None and self.runner.current is not None and self.runner.current.id == running.id:
            step = self.runner.current_step[0]
        per_step = (await self.repository.seconds_per_step()).get(running.technique, 0.1)
        return max(0, running.total_steps - step) * per_step

    async def queue_view(self, user_id: int) -> QueueView:
        places = await self._queue_places()
        mine = [(job, places.get(job.id) or Place(None, paused=job.status == JobStatus.QUEUED))
                for job in await self.repository.active_for_user(user_id)]
        return QueueView(mine=mine, queue_length=len(places), running=await self.repository.running())

    async def visible_job(self, job_id: int, user_id: int, guild_id: int | None) -> Job:
        """A job that may be shown here: one of this server's, or the person's own."""
        job = await self.get(job_id)
        if job.user_id != user_id and job.guild_id != guild_id:
            raise UserFacingError(f"Job #{job_id} belongs to another server; ask its author to show it.")
        return job

    async def queue_status(self) -> tuple[int, Job | None]:
        """(jobs waiting, the running job) for /about."""
        return await self.repository.count_with_status(JobStatus.QUEUED), await self.repository.running()

    async def get(self, job_id: int) -> Job:
        job = await self.repository.get(job_id)
        if job is None:
            raise UserFacingError(f"There is no job #{job_id}. /queue lists your jobs.")
        return job

    async def cancel(self, job_id: int, user_id: int, host_of_guild: int | None) -> tuple[Job, str]:
        """Cancels a queued job at once, or asks a running one to stop after its current step.

        `host_of_guild` is the guild where the person asking is a host: hosts may cancel that guild's jobs.
        """
        job = await self.get(job_id)
        if job.user_id != user_id and (host_of_guild is None or job.guild_id != host_of_guild):
            raise UserFacingError("You can only cancel your own jobs (hosts can cancel any job of their server).")
        if job.status == JobStatus.QUEUED:
            try:
                job = await self.repository.transition(job.id, JobStatus.QUEUED, JobStatus.CANCELLED)
            except IllegalTransition:
                job = await self.get(job_id)  # it started a moment ago: fall through to the running case
            else:
                await self._show_cancelled(job)
                return job, f"Cancelled job #{job.id}."
        if job.status == JobStatus.RUNNING and self.runner is not None:
            self.runner.cancel(job.id)
            return job, f"Stopping job #{job.id} after its current step."
        raise UserFacingError(f"Job #{job.id} already finished ({job.status}); there is nothing to cancel.")

    async def _show_cancelled(self, job: Job) -> None:
        """The cancel is done once the row says so; the status message is best effort."""
        if self.views is None:
            return
        try:
            await self.views.job_cancelled(job)
        except Exception:
            log.warning("job %s: could not show the cancel on Discord", job.id, exc_info=True)

    async def latest_active_job(self, user_id: int) -> Job | None:
        active = await self.repository.active_for_user(user_id)
        running = [job for job in active if job.status == JobStatus.RUNNING]
        return (running or active[-1:] or [None])[0]

    # --- jobs made from other jobs (the buttons under a result) ------------------------------------

    async def reroll(self, job_id: int, request: JobRequest) -> Receipt:
        """The same job with a new seed."""
        parent = await self.get(job_id)
        spec = JobSpec.from_dict(parent.spec)
        return await self.submit(dataclasses.replace(
            request, technique=spec.technique, options=_config_options(spec), seed=None, parent_job_id=parent.id,
        ))

    async def continue_from(self, job_id: int, request: JobRequest) -> Receipt:
        """More steps, starting from this job's result."""
        parent = await self.get(job_id)
        spec = JobSpec.from_dict(parent.spec)
        start_field = CONTINUE_FROM_FIELD.get(spec.technique)
        if start_field is None:
            raise UserFacingError(f"{spec.technique} jobs cannot be continued; try re-roll or remix instead.")
        if parent.status != JobStatus.DONE or not parent.result_path or not Path(parent.result_path).exists():  # noqa: ASYNC240 (a stat)
            raise UserFacingError(f"Job #{parent.id} has no finished image to continue from.")
        options = _config_options(spec) | {start_field: parent.result_path}
        if spec.technique == "imagine":
            options["init_strength"] = 1.0
        return await self.submit(dataclasses.replace(
            request, technique=spec.technique, options=options, seed=spec.seed, parent_job_id=parent.id,
        ))

    async def remix(self, job_id: int, request: JobRequest) -> Receipt:
        """This job's options, changed by the prompt and flags in `request.text`."""
        parent = await self.get(job_id)
        spec = JobSpec.from_dict(parent.spec)
        options = _config_options(spec)
        if request.text and not request.text.lstrip().startswith("--"):
            options.pop("prompt", None)  # the new text brings its own prompt
        return await self.submit(dataclasses.replace(
            request, technique=spec.technique, options=options, seed=None, parent_job_id=parent.id,
        ))


def _config_options(spec: JobSpec) -> dict[str, object]:
    return {name: value for name, value in dataclasses.asdict(spec.config).items() if value is not None}


def job_title(spec: JobSpec) -> str:
    """A short text for thread names and lists: the prompt, or the technique and seed."""
    prompt = getattr(spec.config, "prompt", None)
    title = " ".join(prompt.split()) if prompt else f"{spec.technique} #{spec.seed}"
    return title if len(title) <= TITLE_LENGTH else title[: TITLE_LENGTH - 1] + "…"
