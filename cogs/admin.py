"""`/about` and the hosts' `/easel` settings: config, the queue, moderation."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot import __version__
from bot.errors import UserFacingError
from bot.jobs.parser import limit_floor
from bot.jobs.service import may_see
from bot.jobs.workers import WorkerSummary
from bot.retention import DataSize, data_size, human_size
from bot.timestamps import discord_timestamp
from bot.ui.checks import host_only, is_host
from bot.ui.embeds import running_jobs_text
from bot.ui.fit import FIELD_VALUE, fit

if TYPE_CHECKING:
    from bot.client import Easel

DATA_SIZE_SECONDS = 60  # how long /about reuses the data folder's size: walking a big folder takes a while
TERM_SHOWN = 200  # characters of a blocked term echoed back (terms are at most this long)
TERM_KINDS = [app_commands.Choice(name="word or phrase", value="word"),
              app_commands.Choice(name="regular expression", value="pattern")]


def worker_line(worker: WorkerSummary, user_id: int, guild_id: int | None) -> str:
    """One worker for /about: its name and device, and what it runs (a job this person may not see is not named)."""
    if worker.job is None:
        doing = "idle"
    elif may_see(worker.job, user_id, guild_id):
        doing = (f"running job #{worker.job.id} ({worker.job.technique}, step {worker.job.progress_step}"
                 f"/{worker.job.total_steps})")
    else:
        doing = "running a job from another server"
    return f"**{worker.name}** · {worker.device} · {doing}"


def format_uptime(seconds: float) -> str:
    return str(timedelta(seconds=int(seconds)))


class Admin(commands.Cog):
    easel = app_commands.Group(name="easel", description="Easel's settings for this server (hosts)", guild_only=True)
    queue = app_commands.Group(name="queue", description="Pause or resume this server's jobs", parent=easel)
    moderation = app_commands.Group(name="moderation", description="Blocked words and patterns", parent=easel)

    def __init__(self, bot: Easel) -> None:
        self.bot = bot
        self._data_size: tuple[float, DataSize] | None = None  # (when measured, size)

    async def cached_data_size(self) -> DataSize:
        """The data folder's size, measured off the event loop at most once a minute."""
        if self._data_size is None or time.monotonic() - self._data_size[0] > DATA_SIZE_SECONDS:
            settings = self.bot.settings
            size = await asyncio.to_thread(data_size, settings.data_dir, settings.resolved_database_url)
            self._data_size = (time.monotonic(), size)
        return self._data_size[1]

    @app_commands.command(name="about", description="What Easel is, its device and models, the queue, uptime")
    async def about(self, interaction: discord.Interaction[Easel]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        queued, running = await self.bot.jobs.queue_status(interaction.user.id, interaction.guild_id)
        embed = discord.Embed(
            title="Easel",
            description="Community AI-art workshops: set up an image, score it, and watch optimisation at work.",
            colour=discord.Colour.blurple(),
        )
        embed.add_field(name="Version", value=__version__)
        embed.add_field(name="Uptime", value=format_uptime(self.bot.uptime_seconds))
        embed.add_field(name="Running", value=fit(running_jobs_text(running), FIELD_VALUE) if running else "nothing")
        embed.add_field(name="Queue", value=f"{queued} job{'s' if queued != 1 else ''} waiting")
        workers = await self.bot.jobs.workers()
        embed.add_field(name=f"Workers ({len(workers)})", inline=False, value=fit(
            "\n".join(worker_line(worker, interaction.user.id, interaction.guild_id) for worker in workers)
            or "None is running: jobs wait until a worker starts.", FIELD_VALUE))
        if workers:
            embed.add_field(name="Models", value=fit("\n".join(workers[0].models.split("; ")[:2]), FIELD_VALUE),
                            inline=False)
        if await is_host(interaction):
            size = await self.cached_data_size()
            embed.add_field(name="Data folder", inline=False, value=(
                f"{human_size(size.total)} in all: uploads {human_size(size.uploads)}, "
                f"results {human_size(size.results)}, database {human_size(size.database)}"))
        await interaction.followup.send(embed=embed, ephemeral=True)

    @easel.command(name="config", description="Show or set this server's host role and workshop channel")
    @app_commands.describe(
        host_role="Members with this role can run host commands (Manage Server always can)",
        workshop_channel="The channel where workshop jobs and their threads go",
    )
    @host_only()
    async def config(
        self,
        interaction: discord.Interaction[Easel],
        host_role: discord.Role | None = None,
        workshop_channel: discord.TextChannel | None = None,
    ) -> None:
        assert interaction.guild_id is not None  # the group is guild_only
        await interaction.response.defer(ephemeral=True, thinking=True)
        changes: dict[str, object] = {}
        if host_role is not None:
            changes["host_role_id"] = host_role.id
        if workshop_channel is not None:
            changes["workshop_channel_id"] = workshop_channel.id
        service = self.bot.guild_service
        config = await (service.update(interaction.guild_id, **changes) if changes else
                        service.get(interaction.guild_id))
        role = f"<@&{config.host_role_id}>" if config.host_role_id else "not set (Manage Server only)"
        channel = f"<#{config.workshop_channel_id}>" if config.workshop_channel_id else "not set (any channel)"
        verb = "Saved." if changes else "Current settings."
        await interaction.followup.send(f"{verb}\nHost role: {role}\nWorkshop channel: {channel}", ephemeral=True)

    @easel.command(name="limits", description="Show or lower this server's limits on steps and image size")
    @app_commands.describe(max_steps="Most optimisation steps a job may have here",
                           max_size="Largest image side in pixels here")
    @host_only()
    async def limits(self, interaction: discord.Interaction[Easel], max_steps: int | None = None,
                     max_size: int | None = None) -> None:
        assert interaction.guild_id is not None
        await interaction.response.defer(ephemeral=True, thinking=True)
        settings = self.bot.settings
        changes: dict[str, object] = {}
        for name, value, ceiling in (("max_steps", max_steps, settings.max_steps),
                                     ("max_size", max_size, settings.max_size)):
            if value is not None:
                floor = limit_floor(name.removeprefix("max_"))
                if not floor <= value <= ceiling:
                    raise UserFacingError(
                        f"{name} must be between {floor} (the least every technique needs) and {ceiling} "
                        "(this bot's own limit)."
                    )
                changes[name] = value
        service = self.bot.guild_service
        config = await (service.update(interaction.guild_id, **changes) if changes else
                        service.get(interaction.guild_id))
        limits = self.bot.jobs.limits_for(config)
        verb = "Saved." if changes else "Current limits."
        clamp = "lowered to the limit (and the answer says so)" if limits.clamp else "refused"
        await interaction.followup.send(
            f"{verb} Up to {limits.max_steps} steps and {limits.max_size} px per job here; "
            f"values above are {clamp}.", ephemeral=True)

    @queue.command(name="pause", description="Hold this server's queued jobs (the running one finishes)")
    @host_only()
    async def pause(self, interaction: discord.Interaction[Easel]) -> None:
        await self._set_paused(interaction, True)

    @queue.command(name="resume", description="Run this server's queued jobs again")
    @host_only()
    async def resume(self, interaction: discord.Interaction[Easel]) -> None:
        await self._set_paused(interaction, False)

    async def _set_paused(self, interaction: discord.Interaction[Easel], paused: bool) -> None:
        assert interaction.guild_id is not None
        await interaction.response.defer(ephemeral=True, thinking=True)
        await self.bot.guild_service.update(interaction.guild_id, queue_paused=paused)
        if not paused:
            await self.bot.jobs.queue_resumed()
        text = ("Paused: queued jobs from this server wait until /easel queue resume. The running job finishes."
                if paused else "Resumed: this server's queued jobs run again.")
        await interaction.followup.send(text, ephemeral=True)

    @moderation.command(name="add", description="Block prompts containing a word, phrase or pattern")
    @app_commands.describe(kind="A word or phrase (whole words, any case), or a regular expression",
                           value="What to block")
    @app_commands.choices(kind=TERM_KINDS)
    @host_only()
    async def moderation_add(self, interaction: discord.Interaction[Easel], kind: str, value: str) -> None:
        assert interaction.guild_id is not None
        await interaction.response.defer(ephemeral=True, thinking=True)
        await self.bot.moderation.add_term(interaction.guild_id, kind, value, interaction.user.id)
        shown = fit(value, TERM_SHOWN)
        await interaction.followup.send(f"Blocked {kind} `{shown}`. Prompts containing it will be refused.",
                                        ephemeral=True)

    @moderation.command(name="remove", description="Stop blocking a word, phrase or pattern")
    @app_commands.choices(kind=TERM_KINDS)
    @host_only()
    async def moderation_remove(self, interaction: discord.Interaction[Easel], kind: str, value: str) -> None:
        assert interaction.guild_id is not None
        await interaction.response.defer(ephemeral=True, thinking=True)
        removed = await self.bot.moderation.remove_term(interaction.guild_id, kind, value)
        shown = fit(value, TERM_SHOWN)
        text = f"No longer blocking {kind} `{shown}`." if removed else f"`{shown}` was not blocked as a {kind}."
        await interaction.followup.send(text, ephemeral=True)

    @moderation.command(name="list", description="The blocked words and patterns, and recent refused prompts")
    @host_only()
    async def moderation_list(self, interaction: discord.Interaction[Easel]) -> None:
        assert interaction.guild_id is not None
        await interaction.response.defer(ephemeral=True, thinking=True)
        terms = await self.bot.moderation.list_terms(interaction.guild_id)
        refusals = await self.bot.moderation.recent_refusals(interaction.guild_id, limit=10)
        lines = ["**Blocked**", *(f"• {term.kind}: `{term.value}`" for term in terms)] if terms else [
            "Nothing is blocked."]
        if refusals:
            lines.append("**Recently refused**")
            lines += [f"• {discord_timestamp(refusal.created_at, 'R')} <@{refusal.user_id}>: "
                      f"matched `{refusal.matched}`" for refusal in refusals]
        await interaction.followup.send(fit("\n".join(lines)), ephemeral=True,
                                        allowed_mentions=discord.AllowedMentions.none())


async def setup(bot: Easel) -> None:
    await bot.add_cog(Admin(bot))
