"""Community challenges: /challenge create|enter|close|cancel|list|show and /leaderboard.

Thin: check who may do it, defer, call the challenge service, let the desk post, render with `bot.ui.challenges`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.challenges.service import ACTIVE
from bot.errors import UserFacingError
from bot.timestamps import discord_timestamp
from bot.ui.attachments import read_attachment
from bot.ui.challenges import challenge_embed, entries_text, leaderboard_text, ranking_lines
from bot.ui.checks import host_only
from bot.ui.fit import fit
from models import ChallengePhase

if TYPE_CHECKING:
    from bot.client import Easel

TECHNIQUES_HELP = "Only jobs of these techniques, separated by commas (e.g. nca, cppn); empty: any"


class Challenges(commands.Cog):
    challenge = app_commands.Group(name="challenge", description="Community challenges: enter, vote, win",
                                   guild_only=True)

    def __init__(self, bot: Easel) -> None:
        self.bot = bot

    @challenge.command(name="create", description="Hosts: start a challenge with a theme and deadlines")
    @app_commands.describe(
        title="A short name", theme="What to make", entries_close="When entries close: in 3 days, friday 18:00, "
        "2026-12-24 18:00 (UTC unless you add a zone)", voting_closes="When voting closes (after entries close)",
        required_words="Words every job entry's prompt must contain, separated by commas",
        techniques=TECHNIQUES_HELP, entries_per_member="How many entries each member may have (default 1)",
        uploads="Whether uploaded images may enter, or only jobs made here (default: yes)")
    @host_only()
    async def create(self, interaction: discord.Interaction[Easel], title: app_commands.Range[str, 1, 100],
                     theme: app_commands.Range[str, 1, 1000], entries_close: app_commands.Range[str, 1, 100],
                     voting_closes: app_commands.Range[str, 1, 100],
                     required_words: app_commands.Range[str, 1, 400] | None = None,
                     techniques: app_commands.Range[str, 1, 100] | None = None,
                     entries_per_member: app_commands.Range[int, 1, 10] = 1, uploads: bool = True) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None and interaction.channel_id is not None
        config = await self.bot.guild_service.get(interaction.guild_id)
        channel_id = config.workshop_channel_id or interaction.channel_id
        challenge = await self.bot.challenges.create(
            guild_id=interaction.guild_id, host_id=interaction.user.id, channel_id=channel_id, title=title,
            theme=theme, submissions_close=entries_close, voting_close=voting_closes, required_words=required_words,
            techniques=techniques, entries_per_member=entries_per_member, uploads_allowed=uploads)
        try:
            challenge = await self.bot.challenge_desk.catch_up(challenge)
        except discord.Forbidden:
            announcement_id = await self.bot.challenges.discard_unannounced(challenge.id)
            await self.bot.delete_posts([(channel_id, announcement_id)])
            raise UserFacingError(
                f"I may not post or open threads in <#{channel_id}>, so the challenge was not created. A host can "
                "give me Send Messages, Create Public Threads and Attach Files there; then create it again.") from None
        where = f" in <#{challenge.thread_id}>" if challenge.thread_id else ""
        await interaction.followup.send(
            f"Challenge #{challenge.id} **{challenge.title}** is open{where}. Entries close "
            f"{discord_timestamp(challenge.submissions_close_at)} and voting closes "
            f"{discord_timestamp(challenge.voting_close_at)} (shown in your own time).", ephemeral=True)

    @challenge.command(name="enter", description="Enter a challenge with an image or one of your finished jobs")
    @app_commands.describe(challenge="Which challenge (start typing its title)", image="Your image",
                           job="The number of one of your finished jobs", title="A title for your entry",
                           replace="With several entries allowed: which of yours to replace (1, 2, ...)")
    async def enter(self, interaction: discord.Interaction[Easel], challenge: int,
                    image: discord.Attachment | None = None, job: int | None = None,
                    title: app_commands.Range[str, 1, 100] | None = None,
                    replace: app_commands.Range[int, 1, 10] | None = None) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None
        data = await read_attachment("image", image, self.bot.settings.max_upload_bytes) if image else None
        receipt = await self.bot.challenges.enter(
            challenge_id=challenge, guild_id=interaction.guild_id, user_id=interaction.user.id,
            display_name=interaction.user.display_name, image=data, job_id=job, title=title, replace=replace)
        found = receipt.challenge
        allowed = found.entries_per_member
        which = f"entry {receipt.entry.slot} of the {allowed} you may have" if allowed > 1 else "entry"
        how = "It replaced your earlier one. " if receipt.replaced else ""
        file = await asyncio.to_thread(discord.File, receipt.entry.image_path or "", filename="your-entry.webp")
        await interaction.followup.send(
            f"Your {which} to **{found.title}** is in. {how}Only you can see it until entries close "
            f"{discord_timestamp(found.submissions_close_at, 'R')}; then everyone votes, without names. Enter again "
            "before then to replace it.", file=file, ephemeral=True)

    @enter.autocomplete("challenge")
    async def open_challenges(self, interaction: discord.Interaction[Easel],
                              current: str) -> list[app_commands.Choice[int]]:
        return await self._choices(interaction, current, (ChallengePhase.OPEN,))

    @challenge.command(name="close", description="Hosts: end the current phase now (entries, or the vote)")
    @app_commands.describe(challenge="Which challenge")
    @host_only()
    async def close(self, interaction: discord.Interaction[Easel], challenge: int) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None
        ended = await self.bot.challenges.end_phase_now(challenge, interaction.guild_id)
        ended = await self.bot.challenge_desk.catch_up(ended)
        news = {ChallengePhase.VOTING: "Entries are closed and voting is open",
                ChallengePhase.CLOSED: "It is closed and the results are posted"}.get(ended.phase, str(ended.phase))
        await interaction.followup.send(f"**{ended.title}**: {news} in <#{ended.thread_id}>.", ephemeral=True)

    @challenge.command(name="cancel", description="Hosts: cancel a running challenge (no winners, no points)")
    @app_commands.describe(challenge="Which challenge")
    @host_only()
    async def cancel(self, interaction: discord.Interaction[Easel], challenge: int) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None
        cancelled = await self.bot.challenges.cancel(challenge, interaction.guild_id)
        await self.bot.challenge_desk.catch_up(cancelled)
        await interaction.followup.send(f"Cancelled **{cancelled.title}**.", ephemeral=True)

    @close.autocomplete("challenge")
    @cancel.autocomplete("challenge")
    async def active_challenges(self, interaction: discord.Interaction[Easel],
                                current: str) -> list[app_commands.Choice[int]]:
        return await self._choices(interaction, current, ACTIVE)

    @challenge.command(name="list", description="The challenges taking entries or votes, with their deadlines")
    async def list_challenges(self, interaction: discord.Interaction[Easel]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None
        running = await self.bot.challenges.find(interaction.guild_id, "")
        if not running:
            await interaction.followup.send("No challenge is running here. Hosts start one with /challenge create.",
                                            ephemeral=True)
            return
        counts = await self.bot.challenges.entry_counts([challenge.id for challenge in running])
        lines = []
        for challenge in running:
            if challenge.phase == ChallengePhase.OPEN:
                state = f"entries close {discord_timestamp(challenge.submissions_close_at, 'R')}"
            else:
                state = f"voting closes {discord_timestamp(challenge.voting_close_at, 'R')}"
            thread = f" · <#{challenge.thread_id}>" if challenge.thread_id else ""
            lines.append(f"**#{challenge.id} {challenge.title}** · {state} · "
                         f"{entries_text(counts.get(challenge.id, 0))}{thread}")
        await interaction.followup.send(fit("\n".join(lines)), ephemeral=True)

    @challenge.command(name="show", description="A challenge's theme, rules, deadlines, your entries and results")
    @app_commands.describe(challenge="Which challenge")
    async def show(self, interaction: discord.Interaction[Easel], challenge: int) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None
        service = self.bot.challenges
        found = await service.get(challenge, interaction.guild_id)
        counts = await service.entry_counts([found.id])
        lines = []
        mine = await service.entries_of(found.id, interaction.user.id)
        if mine:
            lines.append("Your entries: " + "; ".join(
                f"{entry.slot}. " + (f"#{entry.number} " if entry.number else "") + (entry.title or "untitled")
                + (f" (job #{entry.job_id})" if entry.job_id else "") for entry in mine))
        if found.phase == ChallengePhase.VOTING:
            voted = await service.votes_of(found.id, interaction.user.id)
            lines.append(f"Your vote: #{voted}." if voted else f"You have not voted yet: vote in <#{found.thread_id}>.")
        if found.phase == ChallengePhase.CLOSED:
            lines.extend(ranking_lines(await service.standings(found.id)))
        await interaction.followup.send(fit("\n".join(lines)) or None,
                                        embed=challenge_embed(found, counts.get(found.id, 0)), ephemeral=True)

    @show.autocomplete("challenge")
    async def any_challenge(self, interaction: discord.Interaction[Easel],
                            current: str) -> list[app_commands.Choice[int]]:
        return await self._choices(interaction, current, tuple(ChallengePhase))

    async def _choices(self, interaction: discord.Interaction[Easel], current: str,
                       phases: tuple[ChallengePhase, ...]) -> list[app_commands.Choice[int]]:
        if interaction.guild_id is None:
            return []
        found = await self.bot.challenges.find(interaction.guild_id, current, phases)
        return [app_commands.Choice(name=fit(f"#{challenge.id} {challenge.title} ({challenge.phase})", 100),
                                    value=challenge.id) for challenge in found]

    @app_commands.command(name="leaderboard", description="Challenge points in this server: entered, won, points")
    @app_commands.guild_only()
    async def leaderboard(self, interaction: discord.Interaction[Easel]) -> None:
        await interaction.response.defer(thinking=True)
        assert interaction.guild_id is not None
        rows = await self.bot.challenges.leaderboard(interaction.guild_id)
        await interaction.followup.send(leaderboard_text(rows, interaction.user.id))


async def setup(bot: Easel) -> None:
    await bot.add_cog(Challenges(bot))
