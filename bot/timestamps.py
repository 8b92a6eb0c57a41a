"""Discord's timestamp markup: every member's client shows the moment in their own time zone."""

from __future__ import annotations

from datetime import datetime


def discord_timestamp(moment: datetime, style: str = "f") -> str:
    """`<t:…:f>` is a date and time; style "R" ("in 3 days") counts down by itself."""
    return f"<t:{int(moment.timestamp())}:{style}>"
