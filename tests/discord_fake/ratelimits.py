"""The limits Discord puts on editing messages with the bot token (PATCH /channels/{c}/messages/{m}).

- Per channel, at most `edits` edits per `per_seconds` (a sliding window; 5 per 5 s by default, what bots see
  in practice). Over it the fake answers 429 with Discord's headers and `retry_after` = the time until the
  window lets one more edit through. Like Discord's unpublished sub-limits, successful edits carry no
  X-RateLimit headers announcing it, so discord.py only learns of it from the 429.
- Per channel, at most `old_edits` edits per hour of messages older than an hour; over it Discord answers
  429 code 30046 without a Via header, which discord.py raises at once as an HTTPException (status 429).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from .models import DiscordError

OLD_MESSAGE_EDITS_EXCEEDED = 30046
OLD_MESSAGE_AGE = 3600.0
HOUR = 3600.0


@dataclass
class EditLimits:
    edits: int = 5
    per_seconds: float = 5.0
    old_edits: int = 3
    enabled: bool = True
    _recent: dict[int, deque[float]] = field(default_factory=dict)
    _recent_old: dict[int, deque[float]] = field(default_factory=dict)

    def check(self, channel_id: int, message_age: float, now: float) -> None:
        """Counts one edit at `now` (the fake's clock) or raises the 429 Discord would answer."""
        if not self.enabled:
            return
        recent = _window(self._recent, channel_id, now, self.per_seconds)
        if len(recent) >= self.edits:
            # Rounded up to the millisecond: a retry exactly after `retry_after` must get through.
            retry_after = math.ceil((recent[0] + self.per_seconds - now) * 1000) / 1000
            reason = f"over {self.edits} edits per {self.per_seconds:g} s in channel {channel_id}"
            raise rate_limited(retry_after, limit=self.edits, reason=reason)
        if message_age > OLD_MESSAGE_AGE:
            recent_old = _window(self._recent_old, channel_id, now, HOUR)
            if len(recent_old) >= self.old_edits:
                raise DiscordError(
                    429,
                    OLD_MESSAGE_EDITS_EXCEEDED,
                    "Maximum number of edits to messages older than 1 hour reached. Try again later.",
                    bot_fault=True,
                )
            recent_old.append(now)
        recent.append(now)


def _window(windows: dict[int, deque[float]], channel_id: int, now: float, length: float) -> deque[float]:
    """The channel's edit times within the last `length` seconds."""
    times = windows.setdefault(channel_id, deque())
    while times and times[0] <= now - length:
        times.popleft()
    return times


def rate_limited(retry_after: float, *, limit: int = 5, reason: str = "", bot_fault: bool = True) -> DiscordError:
    """Discord's 429. discord.py retries a 429 by itself only when it has a Via header (else it assumes a
    Cloudflare ban) and its `retry_after` is within the client's `max_ratelimit_timeout`."""
    headers = {
        "Via": "1.1 google",
        "Retry-After": str(max(1, math.ceil(retry_after))),
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset-After": str(retry_after),
        "X-RateLimit-Bucket": "fake-bucket",
        "X-RateLimit-Scope": "user",
    }
    extra = {"retry_after": retry_after, "global": False}
    return DiscordError(
        429, 0, "You are being rate limited.", bot_fault=bot_fault, extra=extra, headers=headers, reason=reason
    )
