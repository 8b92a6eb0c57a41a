"""Challenges as the cogs and the sweeper see them: create, enter, vote, phase changes, results, leaderboard.

Plain asyncio; it knows Discord only as ids. A challenge's phase changes only in `transition`, one guarded
UPDATE, so the sweeper and a host pressing /challenge close at the same moment change it once. Entries
and votes are kept unique by the database itself. Every refusal is a `UserFacingError` saying what to do.
The time comes from `clock`, which tests control.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import Image
from sqlalchemy import BigInteger, delete, func, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from bot.art.techniques import TECHNIQUES
from bot.artwork import ArtworkIntake, picture_writes, remember_member, remove_stored
from bot.challenges.deadlines import check_deadlines, parse_deadline
from bot.challenges.ranking import rank
from bot.db import take_turns
from bot.errors import UserFacingError
from bot.jobs.spec import JobSpec
from bot.settings import Settings
from bot.timestamps import discord_timestamp
from models import Challenge, ChallengeEntry, ChallengePhase, ChallengeVote, Member
from models.base import UTCDateTime, utcnow

log = logging.getLogger(__name__)

TITLE_LENGTH = 100
THEME_LENGTH = 1000
MOST_REQUIRED_WORDS = 10
WORD_LENGTH = 40
MOST_ENTRIES_PER_MEMBER = 10
ACTIVE = (ChallengePhase.OPEN, ChallengePhase.VOTING)
# The one place that says which phase may follow which.
NEXT_PHASES: dict[ChallengePhase, set[ChallengePhase]] = {
    ChallengePhase.OPEN: {ChallengePhase.VOTING, ChallengePhase.CLOSED, ChallengePhase.CANCELLED},
    ChallengePhase.VOTING: {ChallengePhase.CLOSED, ChallengePhase.CANCELLED},
    ChallengePhase.CLOSED: set(),
    ChallengePhase.CANCELLED: set(),
}


@dataclass(frozen=True)
class EntryReceipt:
    entry: ChallengeEntry
    challenge: Challenge
    replaced: bool  # it took the place of an earlier entry of theirs


@dataclass(frozen=True)
class VoteReceipt:
    number: int  # the entry voted for
    previous_number: int | None  # the entry the vote moved from; None for a first vote
    challenge: Challenge


@dataclass(frozen=True)
class Standing:
    """An entry's result: its place, votes and points, with its author's name as last seen."""

    entry: ChallengeEntry
    author_name: str
    votes: int
    place: int
    points: int


@dataclass(frozen=True)
class LeaderboardRow:
    user_id: int
    name: str
    points: int
    entered: int  # closed challenges they had an entry in
    won: int  # closed challenges where an entry of theirs placed first


class ChallengeService:
    def __init__(self, settings: Settings, sessions: async_sessionmaker[AsyncSession], intake: ArtworkIntake,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.settings = settings
        self.sessions = sessions
        self.intake = intake
        self.clock = clock
        self.folder = settings.data_dir / "challenge-entries"
        self._vote_writes = asyncio.Lock()
        self._entering: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()

    # --- create -----------------------------------------------------------------------------------------

    async def create(self, *, guild_id: int, host_id: int, channel_id: int, title: str, theme: str,
                     submissions_close: str, voting_close: str, required_words: str | None = None,
                     techniques: str | None = None, entries_per_member: int = 1,
                     uploads_allowed: bool = True) -> Challenge:
        """A new open challenge; the caller announces it. Deadlines are read relative to the clock."""
        title, theme = title.strip(), theme.strip()
        if not title or len(title) > TITLE_LENGTH:
            raise UserFacingError(f"Give a title of 1 to {TITLE_LENGTH} characters.")
        if not theme or len(theme) > THEME_LENGTH:
            raise UserFacingError(f"Give a theme of 1 to {THEME_LENGTH} characters.")
        if not 1 <= entries_per_member <= MOST_ENTRIES_PER_MEMBER:
            raise UserFacingError(f"Entries per member must be 1 to {MOST_ENTRIES_PER_MEMBER}.")
        now = self.clock()
        submissions_at = parse_deadline(submissions_close, now)
        voting_at = parse_deadline(voting_close, now)
        check_deadlines(submissions_at, voting_at, now)
        words = _listed_words(required_words)
        allowed = _listed_techniques(techniques)
        async with self.sessions.begin() as session:
            challenge = Challenge(
                guild_id=guild_id, title=title, theme=theme, submissions_close_at=submissions_at,
                voting_close_at=voting_at, required_words=words, techniques=allowed,
                entries_per_member=entries_per_member, uploads_allowed=uploads_allowed, created_by=host_id,
                channel_id=channel_id, created_at=now,
            )
            session.add(challenge)
            await session.flush()  # SQLite: the write lock is ours from here
            await take_turns(session, f"challenge-create:{guild_id}")  # PostgreSQL: creators count one at a time
            active = await session.scalar(select(func.count()).select_from(Challenge).where(
                Challenge.guild_id == guild_id, Challenge.phase.in_(ACTIVE)))
            if (active or 0) > self.settings.max_active_challenges:
                raise UserFacingError(
                    f"This server already runs {self.settings.max_active_challenges} challenges, the most it may "
                    "at once. Close or cancel one (/challenge list shows them), then create this one.")
        return challenge

    async def discard_unannounced(self, challenge_id: int) -> int | None:
        """Deletes a challenge whose announcement never got out (the bot may not post there); returns the id
        of an announcement that did get out without its thread, for the caller to delete."""
        async with self.sessions.begin() as session:
            removed = await session.execute(delete(Challenge).where(
                Challenge.id == challenge_id, Challenge.published_phase.is_(None)
            ).returning(Challenge.announcement_message_id))
            row = removed.first()
        return row[0] if row else None

    async def record_posts(self, challenge_id: int, **message_ids: int | None) -> None:
        """Stores the ids of posts just made (announcement_message_id, thread_id, voting_sheet_message_id,
        final_message_id), before the next post is made."""
        async with self.sessions.begin() as session:
            await session.execute(update(Challenge).where(Challenge.id == challenge_id).values(**message_ids))

    async def record_entry_post(self, entry_id: int, message_id: int) -> None:
        async with self.sessions.begin() as session:
            await session.execute(update(ChallengeEntry).where(ChallengeEntry.id == entry_id)
                                  .values(vote_message_id=message_id))

    async def mark_published(self, challenge_id: int, phase: ChallengePhase) -> None:
        """Every post of `phase` is out: the sweeper leaves the challenge alone until its next deadline."""
        async with self.sessions.begin() as session:
            await session.execute(update(Challenge).where(Challenge.id == challenge_id, Challenge.phase == phase)
                                  .values(published_phase=phase))

    # --- look -------------------------------------------------------------------------------------------

    async def get(self, challenge_id: int, guild_id: int) -> Challenge:
        """A challenge of this guild (another guild's reads as missing)."""
        async with self.sessions() as session:
            challenge = await session.scalar(select(Challenge).where(Challenge.id == challenge_id,
                                                                     Challenge.guild_id == guild_id))
        if challenge is None:
            raise UserFacingError(f"There is no challenge #{challenge_id} in this server. /challenge list shows "
                                  "the running ones.")
        return challenge

    async def find(self, guild_id: int, typed: str, phases: Sequence[ChallengePhase] = ACTIVE,
                   limit: int = 25) -> list[Challenge]:
        """The guild's challenges in these phases whose number or title match what was typed, newest first."""
        async with self.sessions() as session:
            challenges = await session.scalars(
                select(Challenge).where(Challenge.guild_id == guild_id, Challenge.phase.in_(phases))
                .order_by(Challenge.id.desc()).limit(200))
        words = typed.lower().split()
        return [challenge for challenge in challenges
                if all(word in f"{challenge.id} {challenge.title}".lower() for word in words)][:limit]

    async def entry_counts(self, challenge_ids: Sequence[int]) -> dict[int, int]:
        async with self.sessions() as session:
            rows = await session.execute(
                select(ChallengeEntry.challenge_id, func.count()).where(ChallengeEntry.challenge_id.in_(challenge_ids))
                .group_by(ChallengeEntry.challenge_id))
        return {challenge_id: count for challenge_id, count in rows.all()}

    async def entries_of(self, challenge_id: int, user_id: int) -> list[ChallengeEntry]:
        async with self.sessions() as session:
            return list(await session.scalars(select(ChallengeEntry).where(
                ChallengeEntry.challenge_id == challenge_id, ChallengeEntry.user_id == user_id)
                .order_by(ChallengeEntry.slot)))

    async def entries(self, challenge_id: int) -> list[ChallengeEntry]:
        """The entries in their public order (by number once voting opened)."""
        async with self.sessions() as session:
            return list(await session.scalars(select(ChallengeEntry).where(ChallengeEntry.challenge_id == challenge_id)
                                              .order_by(ChallengeEntry.number, ChallengeEntry.id)))

    # --- enter ------------------------------------------------------------------------------------------

    async def enter(self, *, challenge_id: int, guild_id: int, user_id: int, display_name: str,
                    image: bytes | None, job_id: int | None, title: str | None,
                    replace: int | None = None) -> EntryReceipt:
        """Stores a member's entry: an upload, or one of their finished jobs that keeps the challenge's rules.

        Until entries close they may replace it (with several allowed, `replace` says which one).
        """
        challenge = await self.get(challenge_id, guild_id)
        self._check_open(challenge)
        if (image is None) == (job_id is None):
            raise UserFacingError("Enter one piece of work: attach an `image`, or give the number of one of your "
                                  "finished jobs as `job`.")
        title = (title or "").strip() or None
        if title is not None and len(title) > TITLE_LENGTH:
            raise UserFacingError(f"Your title is {len(title)} characters; keep it to {TITLE_LENGTH} at most.")
        if title is not None:
            await self.intake.moderate(guild_id, user_id, [title])
        recipe = None
        if image is not None:
            if not challenge.uploads_allowed:
                raise UserFacingError(f"**{challenge.title}** takes only jobs made with Easel: give the number of one "
                                      "of your finished jobs as `job`.")
            picture = await self.intake.checked_upload(image)
        else:
            assert job_id is not None
            picture, job = await self.intake.own_finished_job(job_id, user_id, guild_id)
            problems = rule_problems(challenge, JobSpec.from_dict(job.spec), job_id)
            if problems:
                raise UserFacingError(" ".join(problems))
            recipe = job.spec
        lock = self._entering.setdefault(user_id, asyncio.Lock())
        async with lock:
            mine = await self.entries_of(challenge.id, user_id)
            slot, replaced = _slot_for(challenge, mine, replace)
            entry = ChallengeEntry(challenge_id=challenge.id, user_id=user_id, slot=slot, title=title,
                                   job_id=job_id, recipe=recipe, created_at=self.clock())
            await self._store(entry, replaced, picture, display_name, guild_id)
        return EntryReceipt(entry, challenge, replaced is not None)

    def _check_open(self, challenge: Challenge) -> None:
        if challenge.phase == ChallengePhase.OPEN and self.clock() < challenge.submissions_close_at:
            return
        if challenge.phase in ACTIVE:
            closed = discord_timestamp(challenge.submissions_close_at)
            raise UserFacingError(f"Entries for **{challenge.title}** closed {closed}. Vote for your favourite in its "
                                  "thread!")
        raise UserFacingError(f"**{challenge.title}** is {challenge.phase}; it takes no more entries.")

    async def _store(self, entry: ChallengeEntry, replaced: ChallengeEntry | None, picture: Image.Image,
                     display_name: str, guild_id: int) -> None:
        """Adds the entry in place of the replaced one and writes its image, named by its id, in one transaction
        that also checks, holding the write lock, that entries are still open and the challenge not full."""
        try:
            async with picture_writes(self.folder) as pictures, self.sessions.begin() as session:
                if replaced is not None:
                    await session.execute(delete(ChallengeEntry).where(ChallengeEntry.id == replaced.id))
                session.add(entry)
                await session.flush()  # a write: from here the database is ours (SQLite)
                # PostgreSQL: entrants of one challenge take turns from here, so each count sees the others'
                # entries. NO KEY UPDATE, as the entries' foreign keys already share-lock the row.
                challenge = await session.scalar(select(Challenge).where(Challenge.id == entry.challenge_id)
                                                 .with_for_update(key_share=True))
                assert challenge is not None
                self._check_open(challenge)
                total = await session.scalar(select(func.count()).select_from(ChallengeEntry)
                                             .where(ChallengeEntry.challenge_id == entry.challenge_id))
                if (total or 0) > self.settings.max_challenge_entries:
                    raise UserFacingError(f"**{challenge.title}** is full: it has the most entries it takes "
                                          f"({self.settings.max_challenge_entries}).")
                await remember_member(session, guild_id, entry.user_id, display_name)
                entry.image_path = await pictures.write(picture, entry.id)
        except IntegrityError:
            raise UserFacingError("Another entry of yours arrived at the same moment. Check it with "
                                  "/challenge show, and enter again if needed.") from None
        if replaced is not None and replaced.image_path:
            await asyncio.to_thread(remove_stored, Path(replaced.image_path), self.folder)

    # --- phases -----------------------------------------------------------------------------------------

    async def transition(self, challenge_id: int, from_phase: ChallengePhase, to_phase: ChallengePhase,
                         **changes: Any) -> bool:
        """The one way a phase changes: only from `from_phase`, so of two racing callers exactly one wins.

        Opening the vote numbers the entries in a shuffled order (their entry order would hint at authors).
        """
        if to_phase not in NEXT_PHASES[from_phase]:
            raise ValueError(f"a challenge cannot go from {from_phase} to {to_phase}")
        if to_phase in (ChallengePhase.CLOSED, ChallengePhase.CANCELLED):
            changes.setdefault("ended_at", self.clock())
        async with self.sessions.begin() as session:
            changed = await session.execute(update(Challenge).where(
                Challenge.id == challenge_id, Challenge.phase == from_phase).values(phase=to_phase, **changes))
            if changed.rowcount != 1:
                return False
            if to_phase == ChallengePhase.VOTING:
                entry_ids = list(await session.scalars(select(ChallengeEntry.id).where(
                    ChallengeEntry.challenge_id == challenge_id).order_by(ChallengeEntry.id)))
                random.Random(challenge_id).shuffle(entry_ids)  # the same order if a restart repeats it
                for number, entry_id in enumerate(entry_ids, start=1):
                    await session.execute(update(ChallengeEntry).where(ChallengeEntry.id == entry_id)
                                          .values(number=number))
        log.info("challenge %s: %s -> %s", challenge_id, from_phase, to_phase)
        return True

    async def advance(self, challenge: Challenge) -> Challenge:
        """Takes the next phase change whose deadline has passed (open -> voting, or -> closed without
        entries; voting -> closed), and returns the challenge as it is now."""
        challenge = await self.get(challenge.id, challenge.guild_id)  # the caller's copy may be out of date
        now = self.clock()
        if challenge.phase == ChallengePhase.OPEN and now >= challenge.submissions_close_at:
            has_entries = bool((await self.entry_counts([challenge.id])).get(challenge.id))
            await self.transition(challenge.id, ChallengePhase.OPEN,
                                  ChallengePhase.VOTING if has_entries else ChallengePhase.CLOSED)
        elif challenge.phase == ChallengePhase.VOTING and now >= challenge.voting_close_at:
            await self.transition(challenge.id, ChallengePhase.VOTING, ChallengePhase.CLOSED)
        else:
            return challenge  # nothing was due
        return await self.get(challenge.id, challenge.guild_id)

    async def needing_work(self) -> list[Challenge]:
        """Challenges whose deadline passed or whose posts are not all out, oldest deadline first."""
        now = self.clock()
        async with self.sessions() as session:
            return list(await session.scalars(select(Challenge).where(or_(
                (Challenge.phase == ChallengePhase.OPEN) & (Challenge.submissions_close_at <= now),
                (Challenge.phase == ChallengePhase.VOTING) & (Challenge.voting_close_at <= now),
                Challenge.published_phase.is_(None),
                Challenge.published_phase != Challenge.phase,
            )).order_by(Challenge.submissions_close_at, Challenge.id)))

    async def end_phase_now(self, challenge_id: int, guild_id: int) -> Challenge:
        """A host's /challenge close: entries close now (voting opens), or voting closes now (results)."""
        challenge = await self.get(challenge_id, guild_id)
        now = self.clock()
        changed = True  # a deadline already passed: the phase change is due, only not yet taken
        if challenge.phase == ChallengePhase.OPEN:
            if now < challenge.submissions_close_at:
                changed = await self._set_deadline(challenge.id, ChallengePhase.OPEN, submissions_close_at=now)
        elif challenge.phase == ChallengePhase.VOTING:
            if now < challenge.voting_close_at:
                changed = await self._set_deadline(challenge.id, ChallengePhase.VOTING, voting_close_at=now)
        else:
            raise UserFacingError(f"**{challenge.title}** is already {challenge.phase}.")
        if not changed:
            raise UserFacingError(f"**{challenge.title}** changed phase just now; look again with /challenge show.")
        return await self.advance(challenge)

    async def _set_deadline(self, challenge_id: int, phase: ChallengePhase, **deadline: datetime) -> bool:
        async with self.sessions.begin() as session:
            changed = await session.execute(update(Challenge).where(Challenge.id == challenge_id,
                                                                    Challenge.phase == phase).values(**deadline))
        return changed.rowcount == 1

    async def cancel(self, challenge_id: int, guild_id: int) -> Challenge:
        challenge = await self.get(challenge_id, guild_id)
        if challenge.phase not in ACTIVE or not await self.transition(challenge.id, challenge.phase,
                                                                      ChallengePhase.CANCELLED):
            current = await self.get(challenge_id, guild_id)
            raise UserFacingError(f"**{current.title}** is {current.phase}; only a running challenge can be "
                                  "cancelled.")
        return await self.get(challenge_id, guild_id)

    # --- votes ------------------------------------------------------------------------------------------

    async def vote(self, entry_id: int, guild_id: int | None, voter_id: int) -> VoteReceipt:
        """Puts the member's one vote in the entry's challenge on this entry (moving it if they had voted).

        Only members of the challenge's guild vote: `guild_id` is where the vote was cast (None in a DM).

        One guarded statement inserts or moves the vote, only while voting is open and never on their own
        entry, so many members voting at once are each counted once.
        """
        now = self.clock()
        voted_for = aliased(ChallengeEntry)
        async with self.sessions() as session:
            row = (await session.execute(
                select(ChallengeEntry, Challenge, voted_for.number)
                .join(Challenge, Challenge.id == ChallengeEntry.challenge_id)
                .outerjoin(ChallengeVote, (ChallengeVote.challenge_id == Challenge.id)
                           & (ChallengeVote.voter_id == voter_id))
                .outerjoin(voted_for, voted_for.id == ChallengeVote.entry_id)
                .where(ChallengeEntry.id == entry_id))).first()
        if row is None:
            raise UserFacingError("This entry is no longer in the challenge. Vote for another one.")
        entry, challenge, previous = row
        if guild_id is None or challenge.guild_id != guild_id:
            raise UserFacingError("Only members of the server that runs this challenge can vote, in its thread.")
        self._check_vote(entry, challenge, voter_id, now)
        if previous == entry.number:
            return VoteReceipt(entry.number or 0, entry.number, challenge)
        # One vote written at a time in this process: on SQLite, writers racing on several connections wait
        # in SQLite's busy handler, whose sleeps (up to 100 ms each) made the slowest acknowledgements.
        async with self._vote_writes, self.sessions.begin() as session:
            counted = await session.execute(vote_statement(session.bind.dialect.name, entry.id, guild_id,
                                                            voter_id, now))
        if counted.rowcount != 1:  # the phase changed or the entry went between our read and the write
            fresh = await self.get(challenge.id, guild_id)
            self._check_vote(entry, fresh, voter_id, now)
            raise UserFacingError("This entry is no longer in the challenge. Vote for another one.")
        return VoteReceipt(entry.number or 0, previous, challenge)

    def _check_vote(self, entry: ChallengeEntry, challenge: Challenge, voter_id: int, now: datetime) -> None:
        if challenge.phase == ChallengePhase.OPEN:
            opens = discord_timestamp(challenge.submissions_close_at)
            raise UserFacingError(f"Voting on **{challenge.title}** opens {opens}.")
        if challenge.phase == ChallengePhase.CANCELLED:
            raise UserFacingError(f"**{challenge.title}** was cancelled, so there is nothing to vote on.")
        if challenge.phase != ChallengePhase.VOTING or now >= challenge.voting_close_at:
            raise UserFacingError(f"Voting on **{challenge.title}** has closed; the results are in its thread.")
        if entry.user_id == voter_id:
            raise UserFacingError("That is your own entry: vote for someone else's.")

    async def votes_of(self, challenge_id: int, voter_id: int) -> int | None:
        """The number of the entry the member voted for, if any."""
        async with self.sessions() as session:
            return await session.scalar(
                select(ChallengeEntry.number).join(ChallengeVote, ChallengeVote.entry_id == ChallengeEntry.id)
                .where(ChallengeVote.challenge_id == challenge_id, ChallengeVote.voter_id == voter_id))

    # --- results ----------------------------------------------------------------------------------------

    async def standings(self, challenge_id: int) -> list[Standing]:
        """Every entry, ranked by the votes it has now (a forgotten voter's vote no longer counts)."""
        async with self.sessions() as session:
            rows = (await session.execute(
                select(ChallengeEntry, func.count(ChallengeVote.voter_id), Member.display_name)
                .outerjoin(ChallengeVote, ChallengeVote.entry_id == ChallengeEntry.id)
                .join(Challenge, Challenge.id == ChallengeEntry.challenge_id)
                .outerjoin(Member, (Member.guild_id == Challenge.guild_id) & (Member.user_id == ChallengeEntry.user_id))
                .where(ChallengeEntry.challenge_id == challenge_id)
                .group_by(ChallengeEntry.id, Member.display_name)
                .order_by(ChallengeEntry.number, ChallengeEntry.id))).all()
        names = {entry.id: name or "a member" for entry, _, name in rows}
        return [Standing(ranked.item, names[ranked.item.id], ranked.votes, ranked.place, ranked.points)
                for ranked in rank([(entry, votes) for entry, votes, _ in rows])]

    async def leaderboard(self, guild_id: int) -> list[LeaderboardRow]:
        """Points over the guild's closed challenges, with how many each member entered and won; best first."""
        async with self.sessions() as session:
            rows = (await session.execute(
                select(ChallengeEntry.challenge_id, ChallengeEntry.user_id, func.count(ChallengeVote.voter_id))
                .join(Challenge, Challenge.id == ChallengeEntry.challenge_id)
                .outerjoin(ChallengeVote, ChallengeVote.entry_id == ChallengeEntry.id)
                .where(Challenge.guild_id == guild_id, Challenge.phase == ChallengePhase.CLOSED)
                .group_by(ChallengeEntry.id, ChallengeEntry.challenge_id, ChallengeEntry.user_id)
                .order_by(ChallengeEntry.challenge_id, ChallengeEntry.id))).all()
            names = dict((await session.execute(
                select(Member.user_id, Member.display_name).where(Member.guild_id == guild_id))).all())
        by_challenge: dict[int, list[tuple[int, int]]] = {}
        for challenge_id, user_id, votes in rows:
            by_challenge.setdefault(challenge_id, []).append((user_id, votes))
        points: dict[int, int] = {}
        entered: dict[int, set[int]] = {}
        won: dict[int, set[int]] = {}
        for challenge_id, results in by_challenge.items():
            for ranked in rank(results):
                user_id = ranked.item
                points[user_id] = points.get(user_id, 0) + ranked.points
                entered.setdefault(user_id, set()).add(challenge_id)
                if ranked.place == 1 and ranked.votes > 0:
                    won.setdefault(user_id, set()).add(challenge_id)
        table = [LeaderboardRow(user_id, names.get(user_id, "a member"), points[user_id], len(entered[user_id]),
                                len(won.get(user_id, ()))) for user_id in points]
        return sorted(table, key=lambda row: (-row.points, -row.won, -row.entered, row.user_id))


def rule_problems(challenge: Challenge, spec: JobSpec, job_id: int) -> list[str]:
    """Each way a job breaks the challenge's rules, as its own sentence (empty: it keeps them)."""
    problems = []
    if challenge.techniques and spec.technique not in challenge.techniques:
        problems.append(f"Job #{job_id} was made with `{spec.technique}`; this challenge takes only jobs made with "
                        f"{_either(challenge.techniques)}.")
    if challenge.required_words:
        prompt = getattr(spec.config, "prompt", None)
        if prompt is None:
            problems.append(f"This challenge needs the words {_both(challenge.required_words)} in the prompt, and "
                            f"a `{spec.technique}` job has no prompt.")
        else:
            missing = [word for word in challenge.required_words if not _has_word(prompt, word)]
            if missing:
                problems.append(f"Job #{job_id}'s prompt lacks {_both(missing)}; this challenge needs "
                                f"{_both(challenge.required_words)} in it.")
    return problems


def vote_statement(dialect: str, entry_id: int, guild_id: int, voter_id: int, now: datetime) -> Any:
    """INSERT the vote, or move it on conflict, from a SELECT that finds the entry only while its challenge
    takes votes and only if it is not the voter's own. FOR SHARE makes a racing close wait (PostgreSQL)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    source = (
        select(ChallengeEntry.challenge_id, ChallengeEntry.id, literal(voter_id, BigInteger),
               literal(now, UTCDateTime))
        .join(Challenge, Challenge.id == ChallengeEntry.challenge_id)
        .where(ChallengeEntry.id == entry_id, Challenge.guild_id == guild_id, ChallengeEntry.user_id != voter_id,
               Challenge.phase == ChallengePhase.VOTING, Challenge.voting_close_at > now)
        .with_for_update(read=True, of=Challenge)
    )
    statement = insert(ChallengeVote).from_select(["challenge_id", "entry_id", "voter_id", "voted_at"], source)
    return statement.on_conflict_do_update(
        index_elements=["challenge_id", "voter_id"],
        set_={"entry_id": statement.excluded.entry_id, "voted_at": statement.excluded.voted_at})


def _slot_for(challenge: Challenge, mine: list[ChallengeEntry],
              replace: int | None) -> tuple[int, ChallengeEntry | None]:
    """Which of the member's slots a new entry takes, and the entry it replaces there (if any)."""
    allowed = challenge.entries_per_member
    if replace is not None:
        if not 1 <= replace <= allowed:
            raise UserFacingError(f"`replace` is the number of one of your entries, 1 to {allowed}.")
        return replace, next((entry for entry in mine if entry.slot == replace), None)
    if allowed == 1:
        return 1, next(iter(mine), None)
    taken = {entry.slot for entry in mine}
    free = next((slot for slot in range(1, allowed + 1) if slot not in taken), None)
    if free is None:
        raise UserFacingError(f"You have {allowed} entries, the most this challenge takes. To swap one, enter again "
                              f"with `replace` set to its number (1 to {allowed}; /challenge show lists yours).")
    return free, None


def _listed_words(text: str | None) -> list[str]:
    words = [word.strip() for word in re.split(r"[,;]", text or "") if word.strip()]
    if len(words) > MOST_REQUIRED_WORDS or any(len(word) > WORD_LENGTH for word in words):
        raise UserFacingError(f"Give at most {MOST_REQUIRED_WORDS} required words, separated by commas, each of "
                              f"{WORD_LENGTH} characters at most.")
    return list(dict.fromkeys(words))


def _listed_techniques(text: str | None) -> list[str]:
    names = [name.strip().lower() for name in re.split(r"[,;\s]+", text or "") if name.strip()]
    unknown = [name for name in names if name not in TECHNIQUES]
    if unknown:
        raise UserFacingError(f"There is no technique `{unknown[0][:30]}`. Choose from {', '.join(TECHNIQUES)}, "
                              "separated by commas.")
    return list(dict.fromkeys(names))


def _has_word(text: str, word: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, flags=re.IGNORECASE) is not None


def _either(names: Sequence[str]) -> str:
    quoted = [f"`{name}`" for name in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _both(words: Sequence[str]) -> str:
    quoted = [f"“{word}”" for word in words]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]
