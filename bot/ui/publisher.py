"""Jobs shown on Discord: a thread per job, one throttled status message, keyframes, the final post.

Every message id is stored on the job row as soon as it exists, so after a restart the same
thread and status message are reused and nothing is posted, or anybody pinged, twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import discord
from PIL import Image

from bot.art.imagefiles import encode_animation_for_upload, encode_for_upload, png_bytes, safe_filename
from bot.jobs.files import materialize
from bot.jobs.repository import FINISHED, JobRepository
from bot.jobs.service import Place
from bot.jobs.worker import JobOutput, ProgressEvent
from bot.settings import Settings
from bot.ui.embeds import place_text, result_embed, running_text, status_embed
from bot.ui.fit import THREAD_NAME, fit
from bot.ui.views import result_view, status_view
from models import Job, JobStatus

if TYPE_CHECKING:
    from bot.client import Easel

log = logging.getLogger(__name__)

DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
THREAD_ARCHIVE_MINUTES = 1440
NO_PINGS = discord.AllowedMentions.none()
EDITS_PER_WINDOW, EDIT_WINDOW_SECONDS = 4, 5.0  # Discord allows about 5 edits per 5 s per channel
OLD_MESSAGE_EDITS_USED_UP = 30046  # too many edits of messages older than an hour


def ping_only(user_id: int) -> discord.AllowedMentions:
    """Mentions that ping exactly this one person: never anyone named in user text, nor @everyone."""
    return discord.AllowedMentions(everyone=False, roles=False, replied_user=False, users=[discord.Object(user_id)])


class ChannelEditBudget:
    """Message edits per channel kept under Discord's unpublished limit (about 5 per 5 s).

    Over it Discord answers 429s that discord.py waits out by retrying, which counts against the
    bot's invalid-request allowance; waiting our turn here costs nothing.
    """

    def __init__(self, edits: int = EDITS_PER_WINDOW, seconds: float = EDIT_WINDOW_SECONDS) -> None:
        self.edits = edits
        self.seconds = seconds
        self._recent: dict[int, deque[float]] = {}  # channel id -> times of its edits in the window

    async def wait_turn(self, channel_id: int) -> None:
        """Returns once this channel may take one more edit now, and counts it."""
        while True:
            now = time.monotonic()
            recent = self._recent.setdefault(channel_id, deque())
            while recent and recent[0] <= now - self.seconds:
                recent.popleft()
            if len(recent) < self.edits:
                recent.append(now)
                return
            await asyncio.sleep(recent[0] + self.seconds - now)

    def forget_idle_channels(self) -> None:
        """Drops channels without an edit in the window, so the record stays small."""
        now = time.monotonic()
        for channel_id in [key for key, times in self._recent.items() if not times or times[-1] <= now - self.seconds]:
            del self._recent[channel_id]


PLACE_EDITS_PER_SECOND = 5.0  # all queued jobs' place edits together: a start never costs an edit per job


def worth_an_edit(shown: Place | None, now: Place) -> bool:
    """Whether a queued job's status message should show its new place: when the position moved by a fifth
    or more (every step near the front, so always on reaching it), or when the expected start moved by more
    than a minute and by more than a quarter of the wait. Small drifts wait, so a hundred queued jobs do not
    each cost an edit whenever one job starts."""
    if shown is None or shown.position is None or now.position is None:
        return True
    if abs(shown.position - now.position) >= max(1, shown.position // 5):
        return True
    if shown.starts_at is None or now.starts_at is None:
        return False
    moved = abs((now.starts_at - shown.starts_at).total_seconds())
    return moved > max(60.0, 0.25 * now.wait_seconds)


class EditPace:
    """Spaces calls out to at most `per_second`, over all channels (the channel budget comes on top)."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self._next_at = 0.0

    async def wait_turn(self) -> None:
        now = time.monotonic()
        turn = max(now, self._next_at)
        self._next_at = turn + self.interval
        await asyncio.sleep(turn - now)


class QueuedStatuses:
    """Keeps queued jobs' status messages showing their place and expected start, with few edits.

    Told of every change to the queue (`changed`), it reads the places once, edits the messages whose
    place moved a lot (front of the queue first) at PLACE_EDITS_PER_SECOND, and starts over when the
    queue changes again meanwhile.
    """

    def __init__(self, publisher: DiscordPublisher) -> None:
        self.publisher = publisher
        self.shown: dict[int, Place] = {}  # job id -> the place its status message shows
        self.pace = EditPace(PLACE_EDITS_PER_SECOND)
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def changed(self) -> None:
        self._changed.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._keep_places_fresh(), name="easel-queued-statuses")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _keep_places_fresh(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            try:
                await self._edit_moved_places()
            except Exception:  # Discord or the database stumbled: the next change tries again
                log.warning("could not update the places of queued jobs", exc_info=True)

    async def _edit_moved_places(self) -> None:
        places = await self.publisher.bot.jobs.queue_places()
        for job_id in [job_id for job_id in self.shown if job_id not in places]:
            del self.shown[job_id]  # started, finished, cancelled or paused: other messages say so
        moved = sorted((place.position or 0, job_id) for job_id, place in places.items()
                       if worth_an_edit(self.shown.get(job_id), place))
        for _, job_id in moved:
            if self._changed.is_set():
                return  # the queue changed again: read the places afresh first
            await self.pace.wait_turn()
            await self.publisher.show_place(job_id, places[job_id])
            self.shown[job_id] = places[job_id]


@dataclass
class LiveStatus:
    """The running job's status message: the newest frame waits here; frames in between are dropped."""

    job: Job
    started_at: float = field(default_factory=time.monotonic)
    latest: ProgressEvent | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    views_ready: asyncio.Event = field(default_factory=asyncio.Event)  # the thread and status message exist
    last_edit_at: float = 0.0
    next_keyframe: int = 0
    task: asyncio.Task[None] | None = None
    pending: set[asyncio.Task[None]] = field(default_factory=set)  # keyframe posts under way


class DiscordPublisher:
    def __init__(self, bot: Easel, repository: JobRepository, settings: Settings) -> None:
        self.bot = bot
        self.repository = repository
        self.settings = settings
        self.live: dict[int, LiveStatus] = {}
        self.edit_budget = ChannelEditBudget()
        self.queued_statuses = QueuedStatuses(self)
        self._opening: dict[int, asyncio.Lock] = {}

    # --- the thread and the status message --------------------------------------------------------

    async def open_views(self, job: Job, place: Place | None = None) -> int:
        """Makes sure the job has its thread and status message; returns the id of the thread (or channel).

        The command that queued the job and the runner that starts it may both call this at once:
        the lock makes the second wait and reuse what the first made.
        """
        async with self._lock(job.id):
            return await self._open_views(job, place)

    def _lock(self, job_id: int) -> asyncio.Lock:
        """Serialises the making and the final edits of one job's views."""
        return self._opening.setdefault(job_id, asyncio.Lock())

    async def _open_views(self, job: Job, place: Place | None) -> int:
        """`place` is the job's place in the queue when the caller already knows it."""
        job = await self.repository.get(job.id) or job
        if job.thread_id is None:
            job.thread_id = await self._open_thread(job)
            await self.repository.update_views(job.id, thread_id=job.thread_id)
        if job.status_message_id is None:
            finished = job.status in FINISHED
            place = None if finished else place or await self.bot.jobs.place_of(job)
            text = f"{job.status}." if place is None else place_text(place)
            message = await self._channel(job.thread_id).send(
                embed=status_embed(job, text=text.capitalize() if finished else text),
                view=None if finished else status_view(job.id), allowed_mentions=NO_PINGS,
            )
            job.status_message_id = message.id
            await self.repository.update_views(job.id, status_message_id=message.id)
            if place is not None and place.position is not None:
                self.queued_statuses.shown[job.id] = place
                self.queued_statuses.changed()  # a newcomer may go ahead of others (each person takes turns)
        return job.thread_id

    async def show_place(self, job_id: int, place: Place) -> None:
        """A queued job's status message shows its new place (left alone if the job has moved on)."""
        async with self._lock(job_id):
            job = await self.repository.get(job_id)
            if job is None or job.status != JobStatus.QUEUED:
                return
            try:
                await self._edit_status(job, embed=status_embed(job, text=place_text(place)))
            except discord.HTTPException as error:
                log.info("job %s: could not show its new place (%s %s)", job.id, error.status, error.code)

    async def _open_thread(self, job: Job) -> int:
        """A thread named after the prompt, on a bot message in the job's channel; the channel itself
        when threads are not possible there (for example the guild's cap on active threads)."""
        channel = self._channel(job.channel_id)
        starter = await channel.send(
            f"🎨 **Job #{job.id}** by <@{job.user_id}> · {job.technique}: {job.title}", allowed_mentions=NO_PINGS,
        )
        if job.guild_id is None:
            return job.channel_id
        try:
            thread = await starter.create_thread(
                name=fit(f"#{job.id} {job.title}", THREAD_NAME), auto_archive_duration=THREAD_ARCHIVE_MINUTES,
            )
        except discord.HTTPException as error:
            log.warning("job %s: no thread (%s %s); using the channel", job.id, error.status, error.code)
            return job.channel_id
        return thread.id

    def _channel(self, channel_id: int) -> discord.abc.Messageable:
        return self.bot.messageable(channel_id)

    async def _edit_status(self, job: Job, **changes: object) -> None:
        if job.thread_id is None or job.status_message_id is None:
            return
        await self.edit_budget.wait_turn(job.thread_id)
        message = self._channel(job.thread_id).get_partial_message(job.status_message_id)  # type: ignore[attr-defined]
        await message.edit(**changes)

    async def _show_final_status(self, job: Job, text: str) -> None:
        """The status message's last word. It may be gone (deleted by someone) or refused: the
        outcome is posted anyway, so this never raises for Discord's reasons."""
        try:
            await self._edit_status(job, embed=status_embed(job, text=text), attachments=[], view=None)
        except discord.HTTPException as error:
            log.warning("job %s: could not update its status message (%s %s)", job.id, error.status, error.code)

    # --- JobViews: what the runner reports ----------------------------------------------------------

    async def job_started(self, job: Job) -> None:
        # Progress may arrive while the thread is still being made: it waits in `live` until then.
        self.queued_statuses.changed()
        live = LiveStatus(job=job, next_keyframe=job.keyframes_posted)
        self.live[job.id] = live
        live.task = asyncio.create_task(self._keep_status_fresh(live), name=f"easel-status-{job.id}")
        try:
            await self.open_views(job)
            live.job = await self.repository.get(job.id) or job
            await self._edit_status(live.job, attachments=[],
                                    embed=status_embed(live.job, text=running_text(0, job.total_steps, None, None)))
        finally:
            live.last_edit_at = time.monotonic()  # the throttle counts this edit too
            live.views_ready.set()  # even without views: keyframes waiting on them give up rather than hang

    def job_progress(self, job: Job, event: ProgressEvent) -> None:
        live = self.live.get(job.id)
        if live is None:
            return
        live.latest = event
        live.changed.set()
        if job.technique == "train":
            return  # training posts a grid after each chunk instead (job_chunk_done)
        keyframe_step = self._keyframe_step(live.next_keyframe, event.total)
        if keyframe_step is not None and event.step >= keyframe_step:
            live.next_keyframe += 1
            live.pending.add(asyncio.create_task(self._post_keyframe(live, live.next_keyframe, event)))

    def _keyframe_step(self, index: int, total: int) -> int | None:
        """Keyframes are spread evenly over the run: with 4, at 20%, 40%, 60% and 80% of the steps."""
        count = self.settings.keyframes
        if index >= count:
            return None
        return max(1, round(total * (index + 1) / (count + 1)))

    async def _post_keyframe(self, live: LiveStatus, number: int, event: ProgressEvent) -> None:
        await live.views_ready.wait()
        job = live.job
        if job.thread_id is None:
            return
        try:
            image = io.BytesIO(await asyncio.to_thread(png_bytes, event.preview))
            file = discord.File(image, filename=f"easel-{job.id}-step-{event.step}.png")
            await self._channel(job.thread_id).send(  # type: ignore[arg-type]
                f"Step {event.step}/{event.total}", file=file, allowed_mentions=NO_PINGS,
            )
            await self.repository.update_views(job.id, keyframes_posted=number)
        except discord.HTTPException:
            log.warning("job %s: could not post keyframe %s", job.id, number, exc_info=True)

    async def _keep_status_fresh(self, live: LiveStatus) -> None:
        """Edits the status message with the newest frame, at most once every STATUS_EDIT_SECONDS."""
        interval = self.settings.status_edit_seconds
        await live.views_ready.wait()
        while True:
            await live.changed.wait()
            await asyncio.sleep(max(0.0, live.last_edit_at + interval - time.monotonic()))
            live.changed.clear()  # frames that came during the wait are folded into this edit
            event = live.latest
            if event is None:
                continue
            elapsed = time.monotonic() - live.started_at
            eta = elapsed / event.step * (event.total - event.step) if event.step else None
            name = f"easel-{live.job.id}-preview.png"
            preview = io.BytesIO(await asyncio.to_thread(png_bytes, event.preview))
            try:
                await self._edit_status(
                    live.job,
                    embed=status_embed(live.job, text=running_text(event.step, event.total, eta,
                                                                  event.metrics.get("loss")), preview_file=name),
                    attachments=[discord.File(preview, filename=name)],
                )
            except discord.HTTPException as error:
                if error.code == OLD_MESSAGE_EDITS_USED_UP:
                    log.warning("job %s: no more edits of its old status message this hour", live.job.id)
                    return  # the final edit and the result post still come
                # discord.py already waited out ordinary 429s; anything else means slow down.
                log.warning("job %s: status edit failed (%s); slowing down", live.job.id, error.code)
                interval = max(interval * 2, 5.0)
            except discord.RateLimited as error:  # a wait longer than the client's max_ratelimit_timeout
                log.warning("job %s: status edits rate limited for %.0f s", live.job.id, error.retry_after)
                interval = max(interval * 2, error.retry_after)
            live.last_edit_at = time.monotonic()

    async def _stop_live(self, job_id: int, *, finish_keyframes: bool = True) -> LiveStatus | None:
        """Stops the status refresher; keyframes being posted are finished first, so they come before
        the result (on shutdown they are dropped: the job runs again after the restart)."""
        live = self.live.pop(job_id, None)
        self.edit_budget.forget_idle_channels()
        if live is None:
            return None
        if finish_keyframes and live.pending:
            await asyncio.gather(*live.pending, return_exceptions=True)
        for task in [live.task, *live.pending]:
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        return live

    async def close(self) -> None:
        """Stops refreshing status messages (the bot is shutting down)."""
        await self.queued_statuses.stop()
        for job_id in list(self.live):
            await self._stop_live(job_id, finish_keyframes=False)

    async def job_done(self, job: Job) -> None:
        """The result in the job's thread, once: a job whose result was posted before is left alone."""
        await self._stop_live(job.id)
        with contextlib.suppress(discord.HTTPException):  # no thread: the result goes to the channel
            await self.open_views(job)
        async with self._lock(job.id):
            job = await self.repository.get(job.id) or job
            steps = (job.metrics or {}).get("steps_done", job.total_steps)
            await self._show_final_status(job, f"Done in {steps} steps. The result is below.")
            if job.final_message_id is None:
                # A worker elsewhere left the files in the database: they land in the results folder first.
                job = await materialize(self.bot.sessions, self.settings.data_dir / "results", job)
                message = await self._post_result(job)
                await self.repository.update_views(job.id, final_message_id=message.id)
        self._opening.pop(job.id, None)
        await self._record_training(job)

    async def _post_result(self, job: Job) -> discord.Message:
        """The final image, the animation, the loss chart, the parameters and the buttons; pings the author."""
        where = self._channel(job.thread_id or job.channel_id)
        try:
            files, image_name = await asyncio.to_thread(self.result_files, job, self.upload_limit(job))
        except FileNotFoundError:
            log.warning("job %s: its result is no longer stored; posting a notice instead", job.id)
            return await where.send(f"<@{job.user_id}> job #{job.id} finished, but its image is no longer stored.",
                                    allowed_mentions=ping_only(job.user_id))
        return await where.send(
            f"<@{job.user_id}> your job is done.", embed=result_embed(job, image_name), files=files,
            view=result_view(job.id, job.technique), allowed_mentions=ping_only(job.user_id),
        )

    def result_files(self, job: Job, limit: int) -> tuple[list[discord.File], str]:
        """The result's image, animation and loss chart, together under the upload limit, with short
        safe names (never the prompt). The image stays a PNG with the stored result's text chunks
        (its recipe) whenever it can. It encodes images: call it in a thread, not on the event loop.

        Raises FileNotFoundError when the result is no longer stored.
        """
        if job.result_path is None:
            raise FileNotFoundError(f"job {job.id} has no stored result")
        stem = safe_filename(f"easel-{job.id}")
        chart = Path(job.result_path).with_name("loss.png")
        chart_bytes = chart.read_bytes() if chart.exists() else None
        # Whether Discord counts the limit per file or per message, the three files fit.
        budget = (limit - len(chart_bytes or b"")) // 2
        with Image.open(job.result_path) as final:
            final.load()  # text chunks after the pixels are read with them
            recipe = {key: str(value) for key, value in getattr(final, "text", {}).items()}
            # The posted file keeps the stored one's text chunks (`easel`, `parameters`): saved from
            # Discord, it is still the job's recipe.
            data, extension = encode_for_upload(final.copy(), budget, metadata=recipe)
        image_name = f"{stem}.{extension}"
        files = [discord.File(io.BytesIO(data), filename=image_name)]
        if job.animation_path and Path(job.animation_path).exists():
            frames, hold_last = read_frames(job.animation_path)
            data, extension = encode_animation_for_upload(frames, budget, hold_last=hold_last)
            files.append(discord.File(io.BytesIO(data), filename=f"{stem}-steps.{extension}"))
        if chart_bytes:
            files.append(discord.File(io.BytesIO(chart_bytes), filename=f"{stem}-loss.png"))
        return files, image_name

    def upload_limit(self, job: Job) -> int:
        guild = self.bot.get_guild(job.guild_id) if job.guild_id else None
        return guild.filesize_limit if guild else DEFAULT_UPLOAD_LIMIT

    async def job_failed(self, job: Job, message: str) -> None:
        """Tells the author, once, why the job failed."""
        await self._stop_live(job.id)
        with contextlib.suppress(discord.HTTPException):
            await self.open_views(job)
        async with self._lock(job.id):
            job = await self.repository.get(job.id) or job
            await self._show_final_status(job, f"Failed: {message}")
            if job.failure_notice_message_id is None:
                notice = await self._channel(job.thread_id or job.channel_id).send(
                    fit(f"<@{job.user_id}> job #{job.id} failed: {message}"),
                    allowed_mentions=ping_only(job.user_id),
                )
                await self.repository.update_views(job.id, failure_notice_message_id=notice.id)
        self._opening.pop(job.id, None)
        await self._record_training(job)

    async def job_cancelled(self, job: Job) -> None:
        if job.started_at is None:
            self.queued_statuses.changed()  # a queued job left; a running one's successor says so when it starts
        await self._stop_live(job.id)
        async with self._lock(job.id):  # after the views being made, if any: they then say "Cancelled"
            job = await self.repository.get(job.id) or job
            await self._show_final_status(job, "Cancelled.")
        self._opening.pop(job.id, None)
        await self._record_training(job)

    async def _record_training(self, job: Job) -> None:
        """A training job's end is its model's too: ready, stopped or failed."""
        if job.technique == "train":
            await self.bot.generators.record_training(job)

    async def job_requeued(self, job: Job) -> None:
        """A stop, a crash or a lost worker cut a job short: its status message says it waits again."""
        await self._stop_live(job.id, finish_keyframes=False)
        stopped = f" after step {job.progress_step}/{job.total_steps}" if job.progress_step else ""
        text = f"Back in the queue: its worker stopped{stopped} before it finished. It will start again."
        await self._edit_status(job, embed=status_embed(job, text=text),
                                attachments=[], view=status_view(job.id))
        self.queued_statuses.changed()

    async def job_chunk_done(self, job: Job, output: JobOutput) -> None:
        """A chunk of training ended: its sample grid and loss chart in the thread; the status message says
        the job waits for its next turn.

        The runner calls this once per chunk, after the job is back in the queue; a chunk cut short (a
        restart) reports nothing and is trained again from the last checkpoint, so no grid comes twice.
        """
        await self._stop_live(job.id, finish_keyframes=False)
        with contextlib.suppress(discord.HTTPException):
            await self.open_views(job)
        step = output.result.steps_done  # the job may have moved on since: the GPU never waits for Discord
        async with self._lock(job.id):
            job = await self.repository.get(job.id) or job
            if job.status == JobStatus.QUEUED:
                text = (f"Trained {step}/{job.total_steps} steps. It waits for its next turn, "
                        "so other people's jobs run in between.")
                await self._edit_status(job, embed=status_embed(job, text=text), attachments=[],
                                        view=status_view(job.id))
            files = [discord.File(output.image_path, filename=f"easel-{job.id}-step-{step}.png"),
                     discord.File(output.chart_path, filename=f"easel-{job.id}-step-{step}-loss.png")]
            await self._channel(job.thread_id or job.channel_id).send(
                f"Step {step}/{job.total_steps}: the same latents as every grid before.",
                files=files, allowed_mentions=NO_PINGS)
        await self.bot.generators.record_training(job)
        self.queued_statuses.changed()

    async def deliver_missed(self, jobs: list[Job]) -> None:
        """Results and failure notices that a restart or a Discord outage kept from being posted."""
        for job in jobs:
            try:
                if job.status == JobStatus.DONE:
                    await self.job_done(job)
                else:
                    await self.job_failed(job, job.error or "The job failed.")
            except Exception:  # one job's trouble (a missing file, Discord) must not hold back the others
                log.exception("job %s: could not post its outcome after the restart", job.id)


def read_frames(path: str) -> tuple[list[Image.Image], bool]:
    """A stored animation's frames, and whether its last frame is held longer than the others."""
    frames, durations = [], []
    with Image.open(path) as animation:
        for index in range(getattr(animation, "n_frames", 1)):
            animation.seek(index)
            frames.append(animation.convert("RGB"))
            durations.append(animation.info.get("duration", 0))
    return frames, durations[-1] > durations[0]
