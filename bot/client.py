"""The Easel bot: a typed `commands.Bot` that owns the database, the services and the command tree."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands, tasks
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import db
from bot.artwork import ArtworkIntake
from bot.challenges.service import ChallengeService
from bot.course.service import CourseService
from bot.endpoints import configure_discord_endpoints
from bot.errors import UserFacingError
from bot.generators import GeneratorService, default_train_size
from bot.guilds import GuildService
from bot.jobs.files import LocalFiles
from bot.jobs.repository import JobRepository
from bot.jobs.runner import SHUTDOWN_VIEWS_SECONDS, JobRunner
from bot.jobs.service import JobService
from bot.jobs.uploads import UploadStore
from bot.jobs.worker import GpuWorker
from bot.jobs.workers import Lease, WorkerRegistry
from bot.moderation import ModerationService
from bot.privacy import ForgetReport, forget_person
from bot.retention import prune
from bot.settings import Settings
from bot.state import AppStateStore
from bot.ui.challenges import ChallengeDesk, VoteButton
from bot.ui.course import COURSE_BUTTONS
from bot.ui.fit import fit
from bot.ui.publisher import DiscordPublisher
from bot.ui.relay import JobEventRelay
from bot.ui.views import BUTTONS, RunRecipeButton
from models.base import utcnow

log = logging.getLogger(__name__)

COGS = ("cogs.admin", "cogs.generate", "cogs.course", "cogs.challenges", "cogs.generators")
MAX_RATELIMIT_WAIT_SECONDS = 30.0  # the least discord.py accepts
INTERNAL_ERROR_MESSAGE = (
    "Something went wrong on Easel's side, and nothing you typed was lost. "
    "Try again in a minute; if it keeps failing, tell a host (the details are in the bot's log)."
)
FIRST_SWEEP_DELAY_SECONDS = 300  # the first clean-up waits until start-up's own work is done


class EaselTree(app_commands.CommandTree["Easel"]):
    """The command tree with one error handler that answers every failure, ephemerally."""

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await answer_failure(interaction, error)


async def answer_failure(interaction: discord.Interaction, error: Exception) -> None:
    """Tells the user what went wrong: the message of an expected error, else a safe apology.

    Used by the command tree and by buttons and modals, so every failure gets the same answer.
    """
    cause = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    if isinstance(cause, UserFacingError | app_commands.CheckFailure) and str(cause):
        message = str(cause)
    elif isinstance(cause, app_commands.TransformerError | app_commands.CommandSignatureMismatch):
        message = f"{cause} Check the command's options and try again."
    else:
        where = interaction.command.qualified_name if interaction.command else interaction.data
        log.error("interaction %s (%s) failed", interaction.id, where, exc_info=cause)
        message = INTERNAL_ERROR_MESSAGE
    await send_ephemeral(interaction, message)


async def send_ephemeral(interaction: discord.Interaction, message: str) -> None:
    """Answers an interaction ephemerally, whether or not it was already answered or deferred."""
    message = fit(message)
    try:
        if interaction.response.is_done():
            await interaction.followup.send(message, ephemeral=True)
        else:
            await interaction.response.send_message(message, ephemeral=True)
    except discord.HTTPException:
        log.warning("could not tell the user about an error (interaction %s)", interaction.id, exc_info=True)


class Easel(commands.Bot):
    def __init__(self, settings: Settings, *, force_sync: bool = False, cogs: tuple[str, ...] = COGS,
                 clock: Callable[[], datetime] = utcnow, run_worker: bool = True, **client_options: Any) -> None:
        configure_discord_endpoints(settings.discord_api_base, settings.discord_gateway_url)
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents.default(),
            tree_cls=EaselTree,
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),  # a post that must ping names exactly who
            # A longer wait than this raises discord.RateLimited to the caller, whose own back-off runs.
            max_ratelimit_timeout=MAX_RATELIMIT_WAIT_SECONDS,
            **client_options,
        )
        self.cogs_to_load = cogs
        self.settings = settings
        self.run_worker = run_worker  # False: workers run elsewhere (`bot run --no-worker`, PostgreSQL)
        self.force_sync = force_sync
        self.started_at = time.monotonic()
        self.engine: AsyncEngine = db.create_engine(settings.resolved_database_url)
        self.sessions = db.create_session_factory(self.engine)
        self.guild_service = GuildService(self.sessions)
        self.app_state = AppStateStore(self.sessions)
        self.moderation = ModerationService(self.sessions, max_terms=settings.max_blocked_terms_per_guild,
                                            budget_seconds=settings.moderation_budget_seconds)
        self.job_repository = JobRepository(self.sessions)
        self.jobs = JobService(
            settings, self.job_repository, self.guild_service, self.moderation,
            UploadStore(settings.data_dir / "uploads", max_bytes=settings.max_upload_bytes,
                        max_pixels=settings.max_image_pixels),
        )
        self.publisher = DiscordPublisher(self, self.job_repository, settings)
        self.jobs.views = self.publisher
        self.course = CourseService(settings, self.sessions, self.jobs, self.moderation)
        self.challenges = ChallengeService(settings, self.sessions, ArtworkIntake(settings, self.jobs, self.moderation),
                                           clock)
        self.challenge_desk = ChallengeDesk(self)
        self.generators = GeneratorService(settings, self.sessions, self.jobs, self.moderation,
                                           max_image_size=settings.max_train_size or default_train_size(settings),
                                           has_worker=run_worker)
        self.relay = JobEventRelay(self)
        self.runner: JobRunner | None = None  # the bot's own GPU worker, unless it runs with --no-worker
        self.delivering: asyncio.Task[None] | None = None  # posts that a restart or an outage held back
        self.challenge_sweep: asyncio.Future[None] | None = None  # the latest sweep of challenges
        self._shutdown: asyncio.Task[None] | None = None

    async def setup_hook(self) -> None:
        await db.upgrade(self.engine)
        await self.sync_course()
        self.add_dynamic_items(*BUTTONS.values(), *COURSE_BUTTONS, RunRecipeButton, VoteButton)
        for extension in self.cogs_to_load:
            try:
                await self.load_extension(extension)
            except Exception:
                log.exception("cog %s failed to load; the other cogs still work", extension)
        await self.sync_commands(force=self.force_sync)

    async def sync_course(self) -> None:
        """Loads the lesson files into the database; broken files are logged and change nothing."""
        try:
            report, problems = await self.course.sync_from_folder()
        except Exception:
            log.exception("could not load the course from %s; the lessons stay as they were", self.settings.course_dir)
            return
        for problem in problems:
            log.error("course: %s", problem)
        if report is None:
            log.error("the course in %s has %d problems (see above; `python -m bot course check` lists them): "
                      "the lessons stay as they were", self.settings.course_dir, len(problems))
        else:
            log.info("%s", report.summary())

    async def forget(self, user_id: int) -> ForgetReport:
        """/forget-me: deletes the person's rows and files, then the bot's posts of their submissions."""
        report = await forget_person(self.sessions, self.settings.data_dir, user_id)
        await self.delete_posts(report.posted_messages)
        return report

    async def delete_posts(self, posts: list[tuple[int | None, int | None]]) -> None:
        """Deletes messages the bot posted, best effort (a message may already be gone)."""
        for channel_id, message_id in posts:
            if channel_id is None or message_id is None:
                continue
            try:
                await self.http.delete_message(channel_id, message_id)
            except discord.HTTPException:
                log.info("could not delete message %s in channel %s", message_id, channel_id)

    async def start(self, token: str, *, reconnect: bool = True) -> None:
        """Logs in (which runs `setup_hook`), starts the GPU worker unless told not to, then connects."""
        await self.login(token)
        if self.run_worker:
            await self.start_worker()
        await self.start_relay()
        self.sweep_data.start()
        self.sweep_challenges.start()
        await self.connect(reconnect=reconnect)

    async def start_worker(self) -> None:
        """Starts the bot's own GPU worker and its runner, after putting back the jobs a crash left running."""
        worker = GpuWorker.from_settings(self.settings, self.settings.data_dir / "results",
                                         workspace=self.generators.workspace)
        registry = WorkerRegistry(self.sessions)
        self.runner = JobRunner(self.job_repository, worker, self.publisher, LocalFiles(), registry,
                                lease=Lease(self.settings.worker_lease_seconds), wait_until_ready=self.wait_until_ready)
        self.jobs.runner = self.runner
        # With SQLite this is the only worker: whatever a crash left running was its own, and goes back now.
        # With PostgreSQL other workers may be running jobs: theirs go back only when their leases run out.
        requeued, failed, cancelled = await self.job_repository.recover_interrupted(
            only_expired=self.settings.shared_database)
        if requeued or failed or cancelled:
            log.info("after a restart: jobs %s back in the queue, jobs %s failed, jobs %s cancelled",
                     [job.id for job in requeued], [job.id for job in failed], [job.id for job in cancelled])
        for job in requeued:
            try:
                await self.publisher.job_requeued(job)
            except discord.HTTPException:
                log.warning("job %s: could not update its status message", job.id)
        await registry.register(worker, self.settings.worker_name)
        self.runner.start()
        log.info("GPU worker on %s; %s", worker.device, "; ".join(worker.describe()))

    async def start_relay(self) -> None:
        """Posts what workers elsewhere report, and the results and failure notices a restart or an outage
        kept from being posted."""
        missed = await self.job_repository.undelivered()
        self.delivering = asyncio.create_task(self.publisher.deliver_missed(missed), name="easel-deliver-missed")
        self.relay.start()

    @tasks.loop(hours=24)
    async def sweep_data(self) -> None:
        """Daily: removes old results and the uploads no live job reads (see bot.retention). Never raises."""
        try:
            report = await prune(self.sessions, self.settings.data_dir, self.settings.keep_results_days)
        except Exception:
            log.exception("the daily clean-up of old results and uploads failed; it runs again tomorrow")
            return
        for item in report.removed:
            log.info("removed the %s %s (%d bytes)", item.kind, item.path, item.size_bytes)
        log.info("daily clean-up (KEEP_RESULTS_DAYS=%d): %s", self.settings.keep_results_days, report.summary())

    @sweep_data.before_loop
    async def _before_first_sweep(self) -> None:
        await asyncio.sleep(FIRST_SWEEP_DELAY_SECONDS)

    @tasks.loop(minutes=1)
    async def sweep_challenges(self) -> None:
        """Every minute, and at once at start-up: challenge phases whose deadlines passed, and their posts.

        Shielded, so that a shutdown lets a sweep finish its post and store its id rather than cut in between.
        """
        self.challenge_sweep = asyncio.ensure_future(self.challenge_desk.sweep())
        await asyncio.shield(self.challenge_sweep)

    async def sync_commands(self, *, force: bool = False) -> bool:
        """Registers the slash commands when they changed since the last registration.

        Discord allows about 200 command creations a day per guild, so restarts must not re-register.
        With DISCORD_GUILD_ID the commands go to that guild (instantly, for development).
        """
        guild = discord.Object(self.settings.discord_guild_id) if self.settings.discord_guild_id else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        payload = [command.to_dict(self.tree) for command in self.tree.get_commands(guild=guild)]
        scope = f"guild:{guild.id}" if guild else "global"
        digest = hashlib.sha256(
            json.dumps([self.application_id, scope, payload], sort_keys=True, default=str).encode()
        ).hexdigest()
        key = f"commands_hash:{scope}"
        if not force and await self.app_state.get(key) == digest:
            log.info("slash commands unchanged since the last registration (%s)", scope)
            return False
        await self.tree.sync(guild=guild)
        await self.app_state.set(key, digest)
        log.info("registered %d slash commands (%s)", len(payload), scope)
        return True

    def messageable(self, channel_id: int) -> discord.abc.Messageable:
        """A channel or thread to post in by id: the cached one, else a partial one (no request needed)."""
        return self.get_channel(channel_id) or self.get_partial_messageable(channel_id)  # type: ignore[return-value]

    @property
    def uptime_seconds(self) -> float:
        return time.monotonic() - self.started_at

    async def on_ready(self) -> None:
        log.info("connected as %s (%s) to %d guilds", self.user, self.user and self.user.id, len(self.guilds))

    async def close(self) -> None:
        """Stops the running job between steps (it stays queued), then disconnects. Safe to call twice."""
        self.request_close()
        await self._shutdown  # type: ignore[misc]

    def request_close(self) -> None:
        """Starts the shutdown without waiting for it (for signal handlers)."""
        if self._shutdown is None:
            self._shutdown = asyncio.create_task(self._shut_down(), name="easel-shutdown")

    async def _shut_down(self) -> None:
        self.sweep_data.cancel()
        self.sweep_challenges.cancel()
        if self.challenge_sweep is not None:
            await asyncio.wait({self.challenge_sweep}, timeout=SHUTDOWN_VIEWS_SECONDS)
        if self.runner is not None:
            await self.runner.stop()
        await self.relay.stop()
        if self.delivering is not None:
            await asyncio.wait({self.delivering}, timeout=SHUTDOWN_VIEWS_SECONDS)
        await self.publisher.close()
        await super().close()
        await self.engine.dispose()
