"""Generation jobs as the cogs see them: submit, cancel, look up, derive (re-roll, continue, remix).

Plain asyncio; it knows Discord only as ids. Every refusal is a `UserFacingError` whose message
says what was wrong and what to do.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from bot.art.imagefiles import ImageRejected
from bot.art.models import ModelChoice, missing_weights
from bot.coalesce import Coalesced
from bot.errors import UserFacingError
from bot.guilds import GuildConfig, GuildService
from bot.jobs.files import read_inputs
from bot.jobs.parser import Limits, SpecError, parse_job
from bot.jobs.repository import IllegalTransition, JobRepository
from bot.jobs.scheduler import estimated_waits
from bot.jobs.spec import JobSpec
from bot.jobs.uploads import CheckedUpload, UploadStore
from bot.jobs.workers import Lease, WorkerSummary, live_workers
from bot.moderation import ModerationService
from bot.settings import Settings
from models import Job, JobStatus
from models.base import utcnow

if TYPE_CHECKING:
    from bot.jobs.runner import JobRunner, JobViews

log = logging.getLogger(__name__)

# Where a finished image goes when a job is continued: the field that takes the starting image.
CONTINUE_FROM_FIELD = {"imagine": "init_image", "dream": "image", "style": "content"}
TITLE_LENGTH = 90
# How an image option names an earlier result: `--init-image job:123`.
JOB_REFERENCE = re.compile(r"job:#?(\d{1,18})", re.IGNORECASE)
ATTACHED = "attachment"  # what an attached image's field holds until the attachment is stored


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
    # Input images trusted as they are (field -> stored path): a derived job's from its parent, which was
    # checked, or an exercise's from the course folder.
    inherited_images: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Place:
    """Where a queued job stands: its position (1 = next) and the seconds until it starts.

    `position` is None when the job is not waiting to run: it started, or its server's queue is paused.
    """

    position: int | None
    wait_seconds: float = 0.0
    paused: bool = False
    starts_at: datetime | None = None  # the expected start: now plus wait_seconds, when the places were read


@dataclass(frozen=True)
class Receipt:
    job: Job
    place: Place
    notes: list[str]


@dataclass(frozen=True)
class QueueView:
    mine: list[tuple[Job, Place]]
    queue_length: int
    running: list[Job]  # the ones this person may see


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
        # Per person, so the cap is checked and used at once; a lock lives only while someone holds it.
        self._submitting: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()
        self._shared_places = Coalesced(self._read_queue_places)

    async def submit(self, request: JobRequest) -> Receipt:
        """Validates a request and stores it as a queued job; nothing is stored when it is refused."""
        lock = self._submitting.setdefault(request.user_id, asyncio.Lock())
        async with lock:
            return await self._submit(request)

    async def _submit(self, request: JobRequest) -> Receipt:
        """Checks everything first, stores the attached images last, then the job row."""
        missing = missing_weights(self.model_choice, request.technique)
        if missing is not None:
            raise UserFacingError(f"/{request.technique} cannot run on this bot yet. For a host: {missing}")

        await self._check_waiting(request.user_id)

        try:
            uploads = {name: await asyncio.to_thread(self.uploads.check, data)  # decoding takes a while
                       for name, data in request.images.items()}
        except ImageRejected as error:
            raise UserFacingError(str(error)) from None
        config = await self.guilds.get(request.guild_id) if request.guild_id is not None else None
        options = dict(request.options) | dict.fromkeys(uploads, ATTACHED)
        try:
            parsed = parse_job(request.technique, options, limits=self.limits_for(config), text=request.text,
                               seed=request.seed)
        except SpecError as error:
            raise UserFacingError(str(error)) from None
        if request.guild_id is not None:
            await self._moderate(request, parsed.spec)
        spec = await self._with_input_images(parsed.spec, request, uploads)

        return await self._store(request, spec, config, title=job_title(spec), notes=parsed.notes)

    async def submit_prepared(self, request: JobRequest, spec: JobSpec, *, title: str) -> Receipt:
        """Queues a job whose spec the caller built and checked itself (training, sampling a guild's model)."""
        lock = self._submitting.setdefault(request.user_id, asyncio.Lock())
        async with lock:
            await self._check_waiting(request.user_id)
            config = await self.guilds.get(request.guild_id) if request.guild_id is not None else None
            return await self._store(request, spec, config, title=title[:TITLE_LENGTH], notes=[])

    async def _check_waiting(self, user_id: int) -> None:
        waiting = await self.repository.count_with_status(JobStatus.QUEUED, user_id=user_id)
        if waiting >= self.settings.max_queued_per_user:
            raise UserFacingError(
                f"You already have {waiting} jobs waiting, the most this bot takes from one person. "
                "Wait for one to start, or cancel one with /cancel."
            )

    async def _store(self, request: JobRequest, spec: JobSpec, config: GuildConfig | None, *, title: str,
                     notes: list[str]) -> Receipt:
        """Stores the job row, wakes the workers and reads its place."""
        # With a workshop channel configured, every job's thread goes there, wherever it was asked for.
        channel_id = (config and config.workshop_channel_id) or request.channel_id
        inputs = await read_inputs(spec) if self.settings.shared_database else None
        job = await self.repository.add(Job(
            guild_id=request.guild_id, channel_id=channel_id, user_id=request.user_id,
            technique=spec.technique, spec=spec.to_dict(), seed=spec.seed,
            title=title, host_lane=request.is_host, parent_job_id=request.parent_job_id,
            total_steps=getattr(spec.config, "steps", 0),
        ), inputs)
        self.wake_workers()
        try:
            place = await self.place_of(job)
        except Exception as error:
            raise JobQueuedAnyway(job.id) from error
        return Receipt(job=job, place=place, notes=notes)

    def wake_workers(self) -> None:
        """Jobs may run now: the bot's own worker looks at once (workers elsewhere hear it from the database)."""
        if self.runner is not None:
            self.runner.wake()

    async def queue_resumed(self) -> None:
        """A guild's queue resumed: every idle worker, here or elsewhere, looks for its jobs now."""
        self.wake_workers()
        await self.repository.announce_queued()

    async def _moderate(self, request: JobRequest, spec: JobSpec) -> None:
        """Checks every text the job will use, after parsing, against the guild's blocked terms."""
        assert request.guild_id is not None
        texts = spec.texts()
        matched = await self.moderation.check_texts(request.guild_id, texts)
        if matched is not None:
            await self.moderation.log_refusal(request.guild_id, request.user_id, request.channel_id,
                                              " · ".join(texts), matched)
            raise UserFacingError(
                "This server's hosts do not allow that prompt, so it was not queued. "
                "Please change it and try again."
            )

    async def _with_input_images(self, spec: JobSpec, request: JobRequest,
                                 uploads: dict[str, CheckedUpload]) -> JobSpec:
        """The spec with every input image as a stored file: an attachment (stored now), an earlier
        result named `job:123` that this person may see, or an image the parent job already had.

        A typed file name is refused whatever folder it names: it could read anyone's files.
        """
        paths: dict[str, str] = {}
        attached: list[str] = []  # stored last, once everything else is known to be fine
        for name, value in spec.image_paths().items():
            reference = JOB_REFERENCE.fullmatch(value.strip())
            if name in uploads and value == ATTACHED:
                attached.append(name)
                continue
            if reference is not None:
                paths[name] = await self._result_path(int(reference[1]), request, name)
            elif request.inherited_images.get(name) == value:
                if not await asyncio.to_thread(Path(value).exists):
                    if request.parent_job_id is None:  # an image of the course's own
                        raise UserFacingError(f"The course image for `{name}` is missing on this bot; tell a host.")
                    raise UserFacingError(
                        f"The image job #{request.parent_job_id} used as `{name}` is no longer stored here. "
                        "Start a new job and attach it again."
                    )
                paths[name] = value
            else:
                flag = name.replace("_", "-")
                raise UserFacingError(
                    f"`--{flag}` takes an image you attach (the command's `{name}` option) or an earlier result "
                    f"written `job:123`, not a file name."
                )
        for name in attached:
            paths[name] = str(await asyncio.to_thread(self.uploads.store, uploads[name]))
        return dataclasses.replace(spec, config=dataclasses.replace(spec.config, **paths))

    async def _result_path(self, job_id: int, request: JobRequest, field_name: str) -> str:
        """The stored result of a job this person may see, for use as an input image."""
        job = await self.visible_job(job_id, request.user_id, request.guild_id)
        if job.status != JobStatus.DONE or not job.result_path or not Path(job.result_path).exists():  # noqa: ASYNC240 (a stat)
            raise UserFacingError(f"Job #{job.id} has no finished image to use as `{field_name}`.")
        if job.technique == "compare":
            raise UserFacingError(
                f"Job #{job.id} is a /compare contact sheet of several images, not one image to use as "
                f"`{field_name}`. Run the variant you like with /imagine, then use that job."
            )
        return job.result_path

    def limits_for(self, config: GuildConfig | None) -> Limits:
        """The bot's limits, lowered by the guild's own where its hosts set them."""
        return Limits(
            max_steps=min(self.settings.max_steps, (config and config.max_steps) or self.settings.max_steps),
            max_size=min(self.settings.max_size, (config and config.max_size) or self.settings.max_size),
            clamp=self.settings.clamp_out_of_range,
        )

    async def queue_places(self) -> dict[int, Place]:
        """The place of every job waiting to run, by job id, read once for all who ask at the same moment."""
        return await self._shared_places()

    async def _read_queue_places(self) -> dict[int, Place]:
        running_left = await self._running_seconds_left()  # read before the queue: a job may start meanwhile
        ordered = await self.repository.queued_in_order()
        waits = estimated_waits(ordered, running_left)
        now = utcnow()
        return {queued.id: Place(index + 1, waits[queued.id], starts_at=now + timedelta(seconds=waits[queued.id]))
                for index, queued in enumerate(ordered)}

    async def place_of(self, job: Job) -> Place:
        place = (await self.queue_places()).get(job.id)
        if place is not None:
            return place
        config = await self.guilds.get(job.guild_id) if job.guild_id is not None else None
        return Place(None, paused=bool(config and config.queue_paused and job.status == JobStatus.QUEUED))

    async def _running_seconds_left(self) -> float:
        """How soon a worker is free: the least time left of the running jobs (0 when one is idle).

        With several workers this is a rough guess; the places themselves stay right.
        """
        running = await self.repository.running()
        if not running:
            return 0.0
        per_step = await self.repository.seconds_per_step()
        return min(max(0, job.total_steps - self._step_of(job)) * per_step.get(job.technique, 0.1) for job in running)

    def _step_of(self, job: Job) -> int:
        """A running job's step: the bot's own worker knows it now; others record it when they renew their lease."""
        step = self.runner.step_of(job.id) if self.runner is not None else None
        return job.progress_step if step is None else step

    async def queue_view(self, user_id: int, guild_id: int | None) -> QueueView:
        """The person's jobs and the queue's length; the running job only if they may see it."""
        places = await self.queue_places()
        mine = [(job, places.get(job.id) or Place(None, paused=job.status == JobStatus.QUEUED))
                for job in await self.repository.active_for_user(user_id)]
        return QueueView(mine=mine, queue_length=len(places), running=await self._running_visible(user_id, guild_id))

    async def visible_job(self, job_id: int, user_id: int, guild_id: int | None) -> Job:
        """A job that may be shown to this person here; a job they may not see reads as missing."""
        job = await self.repository.get(job_id)
        if job is None or not may_see(job, user_id, guild_id):
            raise UserFacingError(
                f"There is no job #{job_id} that you can see here: a job shows in its own server and to its "
                "author. /queue lists your jobs."
            )
        return job

    async def job_to_show(self, job_id: int, user_id: int, guild_id: int | None) -> Job:
        """A job to post again here: visible, and allowed by this server's blocked terms."""
        job = await self.visible_job(job_id, user_id, guild_id)
        if guild_id is not None:
            matched = await self.moderation.check_texts(guild_id, JobSpec.from_dict(job.spec).texts())
            if matched is not None:
                raise UserFacingError(f"Job #{job.id}'s prompt is not allowed on this server, so it is not shown here.")
        return job

    async def queue_status(self, user_id: int, guild_id: int | None) -> tuple[int, list[Job]]:
        """(jobs waiting, the running jobs this person may see) for /about."""
        return (await self.repository.count_with_status(JobStatus.QUEUED),
                await self._running_visible(user_id, guild_id))

    async def _running_visible(self, user_id: int, guild_id: int | None) -> list[Job]:
        """The running jobs this person may see, oldest first (a batch runs several at once)."""
        return [job for job in await self.repository.running() if may_see(job, user_id, guild_id)]

    async def workers(self) -> list[WorkerSummary]:
        """The workers heard from within a few lease renewals: the ones running now."""
        lease = Lease(self.settings.worker_lease_seconds)
        return await live_workers(self.repository.sessions, timedelta(seconds=max(3 * lease.renew_every, 5.0)))

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
        if job.status == JobStatus.RUNNING:
            if self.runner is not None and self.runner.cancel(job.id):
                return job, f"Stopping job #{job.id} after its current step."
            if await self.repository.request_cancel(job.id):  # a worker on another machine runs it
                return job, f"Stopping job #{job.id} after its current step (its worker hears of it within seconds)."
            return await self._cancel_stale(job)
        raise _nothing_to_cancel(job)

    async def _cancel_stale(self, job: Job) -> tuple[Job, str]:
        """A row left `running` although the worker is not running it (its outcome could not be saved)."""
        try:
            job = await self.repository.transition(job.id, JobStatus.RUNNING, JobStatus.CANCELLED)
        except IllegalTransition:
            raise _nothing_to_cancel(await self.get(job.id)) from None
        await self._show_cancelled(job)
        return job, f"Job #{job.id} was marked running, but the worker was no longer running it. It is cancelled now."

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
        parent, spec = await self._parent(job_id, request)
        options = _config_options(spec)
        if spec.technique == "compare" and options["what"] == "seed":
            options.pop("values", None)  # new seeds to compare: the new job's seed and the ones after it
        return await self._submit_derived(request, parent, spec, options, seed=None)

    async def continue_from(self, job_id: int, request: JobRequest) -> Receipt:
        """More steps, starting from this job's result."""
        parent, spec = await self._parent(job_id, request)
        start_field = CONTINUE_FROM_FIELD.get(spec.technique)
        if start_field is None:
            raise UserFacingError(f"{spec.technique} jobs cannot be continued; try re-roll or remix instead.")
        options = _config_options(spec) | {start_field: f"job:{parent.id}"}
        if spec.technique == "imagine":
            options["init_strength"] = 1.0
        return await self._submit_derived(request, parent, spec, options, seed=spec.seed)

    async def remix(self, job_id: int, request: JobRequest) -> Receipt:
        """This job's options, changed by the prompt and flags in `request.text`."""
        parent, spec = await self._parent(job_id, request)
        options = _config_options(spec)
        if request.text and not request.text.lstrip().startswith("--"):
            options.pop("prompt", None)  # the new text brings its own prompt
        return await self._submit_derived(request, parent, spec, options, seed=None)

    async def run_recipe(self, spec: JobSpec, source_job_id: int | None, request: JobRequest) -> Receipt:
        """Queues a recipe read from a PNG, with its seed. The paths a recipe names are never used: its input
        images come from the job that made it, when this person may see that job."""
        options = _config_options(spec)
        needed = list(spec.image_paths())
        if not needed:
            return await self.submit(dataclasses.replace(request, technique=spec.technique, options=options,
                                                         seed=spec.seed))
        if source_job_id is None:
            raise _attach_again(spec.technique, needed)
        try:
            parent, parent_spec = await self._parent(source_job_id, request)
        except UserFacingError:
            raise _attach_again(spec.technique, needed) from None
        if parent_spec.technique != spec.technique:
            raise _attach_again(spec.technique, needed)
        return await self._submit_derived(request, parent, parent_spec, options | parent_spec.image_paths(),
                                          seed=spec.seed)

    async def _parent(self, job_id: int, request: JobRequest) -> tuple[Job, JobSpec]:
        """The job a button derives from, if the person pressing it may see it."""
        parent = await self.visible_job(job_id, request.user_id, request.guild_id)
        return parent, JobSpec.from_dict(parent.spec)

    async def _submit_derived(self, request: JobRequest, parent: Job, spec: JobSpec, options: dict[str, object],
                              seed: int | None) -> Receipt:
        """Submits a job made from `parent`: its technique and input images, with these options."""
        return await self.submit(dataclasses.replace(
            request, technique=spec.technique, options=options, seed=seed, parent_job_id=parent.id,
            inherited_images=spec.image_paths(),
        ))


class JobQueuedAnyway(UserFacingError):
    """The job was stored, but telling its author so failed: they must not queue it again."""

    def __init__(self, job_id: int) -> None:
        super().__init__(
            f"Your job #{job_id} is queued, but Discord or the bot stumbled while answering. Do not send it "
            f"again: see it with `/job id:{job_id}` or /queue."
        )
        self.job_id = job_id


def _attach_again(technique: str, fields: list[str]) -> UserFacingError:
    names = ", ".join(f"`{name}`" for name in fields)
    return UserFacingError(f"This recipe reads images ({names}) that are not yours to reuse here. Run "
                           f"/{technique} with the recipe's settings and attach them again.")


def _nothing_to_cancel(job: Job) -> UserFacingError:
    return UserFacingError(f"Job #{job.id} already finished ({job.status}); there is nothing to cancel.")


def may_see(job: Job, user_id: int, guild_id: int | None) -> bool:
    """A guild job shows in its guild and to its author; a DM job to its author alone."""
    return job.user_id == user_id or (job.guild_id is not None and job.guild_id == guild_id)


def _config_options(spec: JobSpec) -> dict[str, object]:
    return {name: value for name, value in dataclasses.asdict(spec.config).items() if value is not None}


def job_title(spec: JobSpec) -> str:
    """A short text for thread names and lists: the prompt, or the technique and seed."""
    prompt = getattr(spec.config, "prompt", None)
    title = " ".join(prompt.split()) if prompt else f"{spec.technique} #{spec.seed}"
    return title if len(title) <= TITLE_LENGTH else title[: TITLE_LENGTH - 1] + "…"
