"""How challenges look on Discord, and the desk that posts each phase: the announcement and thread, the
numbered entries with vote buttons, the results.

Every post's message id is stored before the next post is made, and a phase is marked published once all
its posts are out, so the sweeper (every minute and at start-up) finishes whatever a restart interrupted
and never posts twice. Vote buttons carry the entry id (`easel:vote:<entry>`), so they work after a restart.
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import discord

from bot.art.contact_sheet import Tile, contact_sheets
from bot.challenges.service import LeaderboardRow, Standing
from bot.jobs.spec import JobSpec
from bot.timestamps import discord_timestamp
from bot.ui.fit import EMBED_DESCRIPTION, THREAD_NAME, fit, fit_embed
from bot.ui.views import AnsweringButton
from models import Challenge, ChallengeEntry, ChallengePhase

if TYPE_CHECKING:
    from bot.client import Easel

log = logging.getLogger(__name__)

CHALLENGE_COLOUR = discord.Colour.gold()
MEDALS = {1: "🥇", 2: "🥈", 3: "🥉"}
RANKING_LINES = 25  # the results post lists this many; /challenge show lists the rest
LEADERBOARD_LINES = 15
SHEET_TILES = 20  # tiles per sheet: 200 entries (the most allowed) make 10, the most files a message carries


# --- text -----------------------------------------------------------------------------------------------


def rules_text(challenge: Challenge) -> str:
    rules = []
    if challenge.techniques:
        rules.append("Jobs made with " + ", ".join(f"`{name}`" for name in challenge.techniques) + " only.")
    if challenge.required_words:
        rules.append("The prompt must contain " + ", ".join(f"“{word}”" for word in challenge.required_words) + ".")
    if not challenge.uploads_allowed:
        rules.append("Easel jobs only: no uploads.")
    each = "one entry" if challenge.entries_per_member == 1 else f"up to {challenge.entries_per_member} entries"
    rules.append(f"{each.capitalize()} per member; you can replace yours until entries close.")
    return "\n".join(rules)


def challenge_embed(challenge: Challenge, entries: int | None = None) -> discord.Embed:
    embed = discord.Embed(title=f"Challenge #{challenge.id} · {challenge.title}", description=challenge.theme,
                          colour=CHALLENGE_COLOUR)
    embed.add_field(name="Entries close", value=f"{discord_timestamp(challenge.submissions_close_at)} "
                                                f"({discord_timestamp(challenge.submissions_close_at, 'R')})")
    embed.add_field(name="Voting closes", value=f"{discord_timestamp(challenge.voting_close_at)} "
                                                f"({discord_timestamp(challenge.voting_close_at, 'R')})")
    embed.add_field(name="Phase", value=str(challenge.phase))
    embed.add_field(name="Rules", value=rules_text(challenge), inline=False)
    if challenge.phase == ChallengePhase.OPEN:
        embed.add_field(name="How to enter", inline=False,
                        value=f"`/challenge enter challenge:{challenge.id}` with an `image` or a finished `job` of "
                              "yours. Entries stay hidden until entries close; then everyone votes, without names.")
    if entries is not None:
        embed.set_footer(text=f"{entries_text(entries)} so far")
    return fit_embed(embed)


def entries_text(count: int) -> str:
    return f"{count} entr{'y' if count == 1 else 'ies'}"


def entry_label(entry: ChallengeEntry) -> str:
    return f"#{entry.number}" + (f" · {entry.title}" if entry.title else "")


def ranking_lines(standings: Sequence[Standing]) -> list[str]:
    """"🥇 1st · #3 “Breathing towers” by @ada · 5 votes · 3 points", best first."""
    lines = []
    for standing in standings:
        entry = standing.entry
        title = f" “{entry.title}”" if entry.title else ""
        votes = f"{standing.votes} vote{'s' if standing.votes != 1 else ''}"
        points = f" · {standing.points} point{'s' if standing.points != 1 else ''}" if standing.points else ""
        lines.append(f"{MEDALS.get(standing.place, '')} {ordinal(standing.place)} · #{entry.number}{title} by "
                     f"<@{entry.user_id}> · {votes}{points}".strip())
    return lines


def leaderboard_text(rows: Sequence[LeaderboardRow], asker_id: int) -> str:
    if not rows:
        return "No challenge has closed here yet, so nobody has points. Hosts start one with /challenge create."
    lines = ["**Leaderboard** (points · challenges entered · won)"]
    for place, row in enumerate(rows[:LEADERBOARD_LINES], start=1):
        lines.append(f"{place}. <@{row.user_id}> · {row.points} · {row.entered} · {row.won}")
    mine = next(((place, row) for place, row in enumerate(rows, start=1) if row.user_id == asker_id), None)
    if mine is not None and mine[0] > LEADERBOARD_LINES:
        lines.append(f"…\n{mine[0]}. you · {mine[1].points} · {mine[1].entered} · {mine[1].won}")
    return fit("\n".join(lines))


def winner_recipes(winners: Sequence[Standing]) -> list[str]:
    """The recipe of each winning job entry, so everyone can learn from it (uploads have none)."""
    lines = []
    for standing in winners:
        if standing.entry.recipe is None:
            continue
        try:
            recipe = JobSpec.from_dict(standing.entry.recipe).describe()
        except (KeyError, TypeError, ValueError):  # a technique or parameter this version no longer has
            continue
        lines.append(f"#{standing.entry.number}: `{recipe}`")
    return lines


def ordinal(place: int) -> str:
    suffix = "th" if 10 <= place % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(place % 10, "th")
    return f"{place}{suffix}"


def entry_tiles(entries: Sequence[ChallengeEntry]) -> list[Tile]:
    return [Tile(_path(entry), entry_label(entry)) for entry in entries if entry.image_path]


def winner_tiles(standings: Sequence[Standing]) -> list[Tile]:
    return [Tile(_path(s.entry), f"{ordinal(s.place)} · {s.author_name}" + (f" · {s.entry.title}" if s.entry.title
                                                                             else ""))
            for s in standings if s.points and s.entry.image_path]


def _path(entry: ChallengeEntry) -> Path:
    assert entry.image_path is not None
    return Path(entry.image_path)


# --- the vote button ------------------------------------------------------------------------------------


class VoteButton(AnsweringButton, discord.ui.DynamicItem[discord.ui.Button],
                 template=r"easel:vote:(?P<entry_id>[0-9]+)"):
    """Puts the presser's one vote on this entry (the service checks it was pressed in the challenge's guild).
    Answered at once, without a defer: it is one short read and one short write."""

    def __init__(self, entry_id: int, number: int | None = None) -> None:
        super().__init__(discord.ui.Button(label=f"Vote for #{number}" if number else "Vote", emoji="🗳️",
                                           style=discord.ButtonStyle.primary, custom_id=f"easel:vote:{entry_id}"))
        self.entry_id = entry_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button, match: Any) -> VoteButton:
        return cls(int(match["entry_id"]))

    async def act(self, interaction: discord.Interaction[Easel]) -> None:
        receipt = await interaction.client.challenges.vote(self.entry_id, interaction.guild_id, interaction.user.id)
        until = discord_timestamp(receipt.challenge.voting_close_at, "R")
        if receipt.previous_number == receipt.number:
            text = f"Your vote is already on #{receipt.number}."
        elif receipt.previous_number is not None:
            text = f"Your vote moved from #{receipt.previous_number} to #{receipt.number}."
        else:
            text = f"You voted for #{receipt.number}."
        text += f" You can move it to another entry until {until} by pressing that entry's button."
        await interaction.response.send_message(text, ephemeral=True)


# --- the desk: each phase's posts -----------------------------------------------------------------------


class ChallengeDesk:
    """Posts what each phase of a challenge shows, and takes the phase changes whose deadlines passed."""

    def __init__(self, bot: Easel) -> None:
        self.bot = bot
        self.service = bot.challenges
        self._locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()

    async def sweep(self) -> None:
        """Every minute and at start-up: catches every challenge up, in deadline order. Never raises."""
        try:
            challenges = await self.service.needing_work()
        except Exception:
            log.exception("could not read the challenges to sweep; trying again in a minute")
            return
        for challenge in challenges:
            try:
                await self.catch_up(challenge)
            except Exception:
                log.warning("challenge %s: could not catch up; trying again in a minute", challenge.id, exc_info=True)

    async def catch_up(self, challenge: Challenge) -> Challenge:
        """Posts the current phase's missing posts, then takes the next due phase change, until none is due.

        Phases that passed while the bot was down are caught up in order: voting is posted before results.
        """
        lock = self._locks.setdefault(challenge.id, asyncio.Lock())
        async with lock:
            challenge = await self.service.get(challenge.id, challenge.guild_id)
            while True:
                await self._publish(challenge)
                advanced = await self.service.advance(challenge)
                if advanced.phase == challenge.phase:
                    return advanced
                challenge = advanced

    async def _publish(self, challenge: Challenge) -> None:
        if challenge.published_phase == challenge.phase:
            return
        if challenge.announcement_message_id is None or challenge.thread_id is None:
            challenge = await self._announce(challenge)
        if challenge.phase == ChallengePhase.VOTING:
            await self._open_voting(challenge)
        elif challenge.phase == ChallengePhase.CLOSED:
            await self._post_results(challenge)
        elif challenge.phase == ChallengePhase.CANCELLED and challenge.final_message_id is None:
            message = await self._thread(challenge).send(
                f"**{challenge.title}** was cancelled by a host. Thank you to everyone who took part.")
            await self.service.record_posts(challenge.id, final_message_id=message.id)
        if challenge.phase != ChallengePhase.OPEN:
            await self._refresh_announcement(challenge)
        await self.service.mark_published(challenge.id, challenge.phase)

    async def _refresh_announcement(self, challenge: Challenge) -> None:
        """The announcement shows the current phase (an edit: repeating it after a restart changes nothing)."""
        assert challenge.announcement_message_id is not None
        channel = self.bot.messageable(challenge.channel_id)
        try:
            await channel.get_partial_message(challenge.announcement_message_id).edit(  # type: ignore[attr-defined]
                embed=challenge_embed(challenge))
        except discord.HTTPException:
            log.info("challenge %s: could not update its announcement", challenge.id)

    async def _announce(self, challenge: Challenge) -> Challenge:
        """The announcement in the workshop channel and the thread opened from it."""
        channel = self.bot.messageable(challenge.channel_id)
        if challenge.announcement_message_id is None:
            message = await channel.send(f"A new challenge: **{challenge.title}**! Read the rules below; "
                                         "talk about it in the thread.", embed=challenge_embed(challenge))
            await self.service.record_posts(challenge.id, announcement_message_id=message.id)
            challenge.announcement_message_id = message.id
        if challenge.thread_id is None:
            starter = channel.get_partial_message(challenge.announcement_message_id)  # type: ignore[attr-defined]
            thread = await starter.create_thread(name=fit(f"Challenge #{challenge.id}: {challenge.title}",
                                                          THREAD_NAME), auto_archive_duration=10080)
            await self.service.record_posts(challenge.id, thread_id=thread.id)
            challenge.thread_id = thread.id
        return challenge

    def _thread(self, challenge: Challenge) -> discord.abc.Messageable:
        return self.bot.messageable(challenge.thread_id or challenge.channel_id)

    async def _open_voting(self, challenge: Challenge) -> None:
        """A contact sheet of every entry, then each entry, numbered and without its author, with a vote button."""
        entries = await self.service.entries(challenge.id)
        thread = self._thread(challenge)
        if challenge.voting_sheet_message_id is None:
            files = await self._sheets(entry_tiles(entries), f"{challenge.title}: the entries", "entries")
            message = await thread.send(
                f"Entries for **{challenge.title}** are closed: here are all {len(entries)}. Vote for your favourite "
                f"with the button under it, until {discord_timestamp(challenge.voting_close_at)} "
                f"({discord_timestamp(challenge.voting_close_at, 'R')}). One vote each, and you can move it; "
                "not for your own entry. Authors are revealed with the results.", files=files)
            await self.service.record_posts(challenge.id, voting_sheet_message_id=message.id)
        for entry in entries:
            if entry.vote_message_id is not None or entry.image_path is None:
                continue
            buttons = discord.ui.View(timeout=None)
            buttons.add_item(VoteButton(entry.id, entry.number))
            file = await asyncio.to_thread(discord.File, entry.image_path, filename=f"entry-{entry.number}.webp")
            message = await thread.send(fit(f"**{entry_label(entry)}**"), file=file, view=buttons)
            await self.service.record_entry_post(entry.id, message.id)

    async def _post_results(self, challenge: Challenge) -> None:
        if challenge.final_message_id is not None:
            return
        standings = await self.service.standings(challenge.id)
        thread = self._thread(challenge)
        if not standings:
            message = await thread.send(f"**{challenge.title}** closed without entries, so there are no winners "
                                        "this time.")
            await self.service.record_posts(challenge.id, final_message_id=message.id)
            return
        winners = [s for s in standings if s.points]
        embed = discord.Embed(title=f"Results · {challenge.title}", colour=CHALLENGE_COLOUR,
                              description=fit("\n".join(ranking_lines(standings[:RANKING_LINES])), EMBED_DESCRIPTION))
        if len(standings) > RANKING_LINES:
            embed.set_footer(text=f"/challenge show challenge:{challenge.id} lists all {len(standings)} entries.")
        recipes = winner_recipes(winners)
        if recipes:
            embed.add_field(name="How the winners were made", value="\n".join(recipes), inline=False)
        if winners:
            names = ", ".join(dict.fromkeys(f"<@{s.entry.user_id}>" for s in winners))
            text = f"**{challenge.title}** is closed! Congratulations {names}!"
        else:
            text = f"**{challenge.title}** is closed. Nobody voted, so no points this time."
        files = await self._sheets(winner_tiles(standings), f"{challenge.title}: the winners", "winners")
        if files:
            embed.set_image(url=f"attachment://{files[0].filename}")
        message = await thread.send(
            text, embed=fit_embed(embed), files=files,
            allowed_mentions=discord.AllowedMentions(users=[discord.Object(s.entry.user_id) for s in winners]))
        await self.service.record_posts(challenge.id, final_message_id=message.id)

    async def _sheets(self, tiles: list[Tile], title: str, prefix: str) -> list[discord.File]:
        """Contact sheets of 20 tiles each, together within the upload limit of one message."""
        if not tiles:
            return []
        pages = math.ceil(len(tiles) / SHEET_TILES)
        sheets = await asyncio.to_thread(contact_sheets, tiles, max_bytes=self.bot.settings.max_upload_bytes // pages,
                                         title=title, filename_prefix=prefix, max_tiles_per_page=SHEET_TILES)
        return [discord.File(io.BytesIO(sheet.data), filename=sheet.filename) for sheet in sheets]
