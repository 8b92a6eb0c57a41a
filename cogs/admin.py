"""`/about` and the hosts' `/easel` settings."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot import __version__
from bot.hardware import describe_device
from bot.jobs.repository import JobRepository
from bot.ui.checks import host_only
from models import JobStatus

if TYPE_CHECKING:
    from bot.client import Easel


def format_uptime(seconds: float) -> str:
    return str(timedelta(seconds=int(seconds)))


class Admin(commands.Cog):
    easel = app_commands.Group(name="easel", description="Easel's settings for this server (hosts)", guild_only=True)

    def __init__(self, bot: Easel) -> None:
        self.bot = bot
        self.jobs = JobRepository(bot.sessions)

    @app_commands.command(name="about", description="What Easel is, the device it runs on, the queue, uptime")
    async def about(self, interaction: discord.Interaction[Easel]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        device = await asyncio.to_thread(describe_device, self.bot.settings.device)
        queued = await self.jobs.count_with_status(JobStatus.QUEUED)
        embed = discord.Embed(
            title="Easel",
            description="Community AI-art workshops: set up an image, score it, and watch optimisation at work.",
            colour=discord.Colour.blurple(),
        )
        embed.add_field(name="Version", value=__version__)
        embed.add_field(name="Device", value=device)
        embed.add_field(name="Queue", value=f"{queued} job{'s' if queued != 1 else ''} waiting")
        embed.add_field(name="Uptime", value=format_uptime(self.bot.uptime_seconds))
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


async def setup(bot: Easel) -> None:
    await bot.add_cog(Admin(bot))
