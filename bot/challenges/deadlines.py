"""Deadlines as hosts write them: "in 3 days", "friday 18:00", "2026-12-24 18:00+01:00". Stored in UTC.

Without a timezone a time is read as UTC; the bot shows the result back as a Discord timestamp, which
every member sees in their own time, so a host sees at once what was understood.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import dateparser

from bot.errors import UserFacingError
from bot.timestamps import discord_timestamp

SHORTEST_PHASE = timedelta(minutes=1)  # a speed round during a live workshop
LONGEST_AHEAD = timedelta(days=366)
WEEKDAY = re.compile(r"\b(mon|tue|wed|thu|fri|sat|sun)[a-z]*\b", re.IGNORECASE)
EXAMPLES = "`in 3 days`, `friday 18:00`, `tomorrow 9am` or `2026-12-24 18:00` (UTC unless you add a zone)"


def parse_deadline(text: str, now: datetime) -> datetime:
    """The moment `text` names, as an aware UTC datetime; a relative one counts from `now`."""
    settings = {
        "PREFER_DATES_FROM": "future",  # "friday" is the coming one
        "RELATIVE_BASE": now.astimezone(UTC).replace(tzinfo=None),
        "TIMEZONE": "UTC",
        "TO_TIMEZONE": "UTC",
        "RETURN_AS_TIMEZONE_AWARE": True,
    }
    parsed = dateparser.parse(text.strip()[:100], languages=["en"], settings=settings)  # type: ignore[arg-type]
    if parsed is None:
        raise UserFacingError(f"I could not read `{text[:100]}` as a date. Try {EXAMPLES}.")
    # dateparser reads "friday 18:00" on a Friday morning as next week's; people mean this evening.
    a_week_earlier = parsed - timedelta(days=7)
    if WEEKDAY.search(text) and "next" not in text.lower() and a_week_earlier > now:
        parsed = a_week_earlier
    return parsed.astimezone(UTC)


def check_deadlines(submissions_close: datetime, voting_close: datetime, now: datetime) -> None:
    """Refuses deadlines in the past, too soon, too far away, or with voting ending before entries close."""
    if submissions_close <= now:
        raise UserFacingError(f"The entry deadline {discord_timestamp(submissions_close)} has already passed. "
                              f"Give one in the future, like {EXAMPLES}.")
    if submissions_close - now < SHORTEST_PHASE:
        raise UserFacingError("Give entrants at least a minute: set the entry deadline a minute or more from now.")
    if voting_close <= submissions_close:
        raise UserFacingError(f"Voting must close after entries close ({discord_timestamp(submissions_close)}), "
                              f"but you gave {discord_timestamp(voting_close)}. Give a later voting deadline.")
    if voting_close - submissions_close < SHORTEST_PHASE:
        raise UserFacingError("Give voters at least a minute: set the voting deadline a minute or more after the "
                              "entry deadline.")
    if voting_close - now > LONGEST_AHEAD:
        raise UserFacingError("A challenge can run for a year at most; give an earlier voting deadline.")
