"""Per-guild moderation of prompts: blocked words, phrases and regex patterns, and the log of refusals.

Words and phrases are matched on a normalised copy of the text (NFKC, casefold, invisible characters
dropped, every run of spaces, punctuation or underscores read as one space), so the term "bad word"
catches "Bad  Word", "bad-word" and "ｂａｄ word", while the term "ass" never matches inside "class".
A term spelled out letter by letter ("b a d", "b.a.d") is caught too.

Patterns are Python regexes. The stdlib's `re` cannot be interrupted and runs on the event loop, so a
pattern is refused on add when its shape can backtrack for seconds: a repeat inside a repeat (`(a+)+`),
or two open-ended repeats that can match the same character (`.*a.*x` took 12 s on 2,000 characters).
All matching runs on at most MAX_CHECKED_CHARS characters.
"""

from __future__ import annotations

import enum
import itertools
import logging
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from re import _parser as sre_parse  # private, but the stdlib's own parser: the way to see a regex's shape

import regex
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import UserFacingError
from models import BlockedTerm, ModerationEvent

MAX_TERM_CHARS = 200  # the width of BlockedTerm.value and ModerationEvent.matched
MAX_CHECKED_CHARS = 2000
PATTERN_TIMEOUT_SECONDS = 0.05  # matching runs on the event loop; `regex` can stop a runaway match

log = logging.getLogger(__name__)

# A repeat whose count can vary by more than this is "open-ended": `.*`, `\w+`, `.{0,100}`.
_OPEN_ENDED_SPAN = 20
_REPEATS = {sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT, sre_parse.POSSESSIVE_REPEAT}
_CATEGORY_SOURCES = {
    "CATEGORY_DIGIT": r"\d",
    "CATEGORY_NOT_DIGIT": r"\D",
    "CATEGORY_SPACE": r"\s",
    "CATEGORY_NOT_SPACE": r"\S",
    "CATEGORY_WORD": r"\w",
    "CATEGORY_NOT_WORD": r"\W",
}
# Characters tried against two repeats' classes to see whether both can match one.
_PROBE_CHARS = "".join(map(chr, range(256))) + "жあ٣\u2003"

_SEPARATORS = re.compile(r"[\W_]+")


class TermKind(enum.StrEnum):
    WORD = "word"  # a word or phrase, matched whole and case-insensitively
    PATTERN = "pattern"  # a Python regex, matched case-insensitively anywhere


@dataclass(frozen=True)
class Term:
    id: int
    guild_id: int
    kind: TermKind
    value: str
    added_by: int
    created_at: datetime

    @classmethod
    def from_row(cls, row: BlockedTerm) -> Term:
        return cls(
            id=row.id,
            guild_id=row.guild_id,
            kind=TermKind(row.kind),
            value=row.value,
            added_by=row.added_by,
            created_at=row.created_at,
        )


@dataclass(frozen=True)
class Refusal:
    id: int
    guild_id: int
    user_id: int
    channel_id: int
    prompt: str
    matched: str
    created_at: datetime

    @classmethod
    def from_row(cls, row: ModerationEvent) -> Refusal:
        return cls(
            id=row.id,
            guild_id=row.guild_id,
            user_id=row.user_id,
            channel_id=row.channel_id,
            prompt=row.prompt,
            matched=row.matched,
            created_at=row.created_at,
        )


@dataclass(frozen=True)
class _CompiledTerms:
    words: tuple[tuple[str, str], ...]  # (normalised, spelled out letter by letter)
    patterns: tuple[tuple[str, regex.Pattern[str]], ...]  # (as typed, compiled with a match timeout)


class ModerationService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self._cache: dict[int, _CompiledTerms] = {}
        # Bumped on every change, so a load that raced with a change is not cached.
        self._generation: defaultdict[int, int] = defaultdict(int)

    async def add_term(self, guild_id: int, kind: str, value: str, added_by: int) -> Term:
        """Blocks a word, phrase or pattern; raises UserFacingError for a bad or duplicate term."""
        kind = TermKind(kind)
        stored = _validated_word(value) if kind is TermKind.WORD else _validated_pattern(value)
        try:
            async with self.sessions.begin() as session:
                row = BlockedTerm(guild_id=guild_id, kind=kind.value, value=stored, added_by=added_by)
                session.add(row)
                await session.flush()
                term = Term.from_row(row)
        except IntegrityError:
            raise UserFacingError(f"The {kind} `{stored}` is already blocked here.") from None
        self._invalidate(guild_id)
        return term

    async def remove_term(self, guild_id: int, kind: str, value: str) -> bool:
        """Unblocks a term, written as when it was added (words in any case or spacing)."""
        kind = TermKind(kind)
        stored = _normalise_words(value) if kind is TermKind.WORD else value.strip()
        async with self.sessions.begin() as session:
            result = await session.execute(
                delete(BlockedTerm).where(
                    BlockedTerm.guild_id == guild_id, BlockedTerm.kind == kind.value, BlockedTerm.value == stored
                )
            )
        self._invalidate(guild_id)
        return result.rowcount > 0

    async def list_terms(self, guild_id: int) -> list[Term]:
        async with self.sessions() as session:
            rows = await session.scalars(
                select(BlockedTerm)
                .where(BlockedTerm.guild_id == guild_id)
                .order_by(BlockedTerm.kind, BlockedTerm.value)
            )
            return [Term.from_row(row) for row in rows]

    async def check(self, guild_id: int, text: str) -> str | None:
        """The first blocked term that the text matches (as the host wrote it), or None.

        `text` is everything the user typed: prompt, negative prompt and inline flags together.
        """
        terms = await self._compiled_terms(guild_id)
        text = _without_invisibles(unicodedata.normalize("NFKC", text[:MAX_CHECKED_CHARS]))[:MAX_CHECKED_CHARS]
        if terms.words:
            padded = f" {_normalise_words(text)} "
            for word, spelled in terms.words:
                if f" {word} " in padded or f" {spelled} " in padded:
                    return word
        for source, pattern in terms.patterns:
            try:
                if pattern.search(text, timeout=PATTERN_TIMEOUT_SECONDS):
                    return source
            except TimeoutError:
                # A pattern the shape check let through still ran away: refuse rather than let it pass.
                log.warning("guild %s: blocked pattern %r timed out; refusing the prompt", guild_id, source)
                return source
        return None

    async def log_refusal(self, guild_id: int, user_id: int, channel_id: int, prompt: str, matched: str) -> Refusal:
        async with self.sessions.begin() as session:
            row = ModerationEvent(
                guild_id=guild_id,
                user_id=user_id,
                channel_id=channel_id,
                prompt=prompt,
                matched=matched[:MAX_TERM_CHARS],
            )
            session.add(row)
            await session.flush()
            return Refusal.from_row(row)

    async def recent_refusals(self, guild_id: int, limit: int = 20) -> list[Refusal]:
        """The guild's refused prompts, newest first."""
        async with self.sessions() as session:
            rows = await session.scalars(
                select(ModerationEvent)
                .where(ModerationEvent.guild_id == guild_id)
                .order_by(ModerationEvent.created_at.desc(), ModerationEvent.id.desc())
                .limit(limit)
            )
            return [Refusal.from_row(row) for row in rows]

    async def _compiled_terms(self, guild_id: int) -> _CompiledTerms:
        cached = self._cache.get(guild_id)
        if cached is not None:
            return cached
        generation = self._generation[guild_id]
        async with self.sessions() as session:
            rows = (
                await session.scalars(
                    select(BlockedTerm).where(BlockedTerm.guild_id == guild_id).order_by(BlockedTerm.id)
                )
            ).all()
        compiled = _CompiledTerms(
            words=tuple((row.value, " ".join(row.value.replace(" ", ""))) for row in rows if row.kind == TermKind.WORD),
            patterns=tuple(
                (row.value, regex.compile(row.value, regex.IGNORECASE | regex.VERSION0))
                for row in rows if row.kind == TermKind.PATTERN
            ),
        )
        if self._generation[guild_id] == generation:
            self._cache[guild_id] = compiled
        return compiled

    def _invalidate(self, guild_id: int) -> None:
        self._generation[guild_id] += 1
        self._cache.pop(guild_id, None)


def _without_invisibles(text: str) -> str:
    """Drops format characters (zero-width spaces and joiners, soft hyphens) used to split a word."""
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def _normalise_words(text: str) -> str:
    text = _without_invisibles(unicodedata.normalize("NFKC", text).casefold())
    return _SEPARATORS.sub(" ", text).strip()


def _validated_word(value: str) -> str:
    if len(value) > MAX_TERM_CHARS:
        raise UserFacingError(f"That word is {len(value)} characters long; keep it to {MAX_TERM_CHARS}.")
    word = _normalise_words(value)
    if not word:
        raise UserFacingError("A blocked word needs at least one letter or digit.")
    return word


def _validated_pattern(value: str) -> str:
    source = value.strip()
    if len(source) > MAX_TERM_CHARS:
        raise UserFacingError(f"That pattern is {len(source)} characters long; keep it to {MAX_TERM_CHARS}.")
    try:
        compiled = re.compile(source, re.IGNORECASE)
    except re.error as error:
        raise UserFacingError(
            f"`{source}` is not a valid regular expression: {error}. "
            "Fix it, or block it as a word if you meant the text literally."
        ) from None
    if compiled.search(""):
        raise UserFacingError(f"`{source}` matches empty text, so it would block every prompt.")
    problem = _slow_shape(source)
    if problem:
        raise UserFacingError(f"`{source}` could take seconds to check on a long prompt: {problem}")
    return source


def _slow_shape(source: str) -> str | None:
    """Why the regex's shape can backtrack for seconds, or None."""
    open_ended: list[re.Pattern[str] | None] = []
    for low, high, body, inside_repeat in _repeats(sre_parse.parse(source, re.IGNORECASE)):
        if inside_repeat and high > 1 and high != low:
            return "it repeats a repeat, like `(a+)+` or `(\\w*)*`. Remove the inner or the outer quantifier."
        if high - low > _OPEN_ENDED_SPAN:
            open_ended.append(_char_class(body))
    # Every character typed in the pattern is probed too: its literals and the ends of its ranges.
    probes = set(_PROBE_CHARS + source)
    for first, second in itertools.combinations(open_ended, 2):
        if first is None or second is None or any(first.fullmatch(c) and second.fullmatch(c) for c in probes):
            return (
                "two of its open-ended repeats (`*`, `+`, `{0,100}`) can match the same characters, "
                "like `.*foo.*bar` or `\\w+\\s*\\w+`. Keep one, e.g. `foo.*bar` rather than `.*foo.*bar`."
            )
    return None


def _repeats(
    sub: sre_parse.SubPattern, inside_repeat: bool = False
) -> Iterator[tuple[int, int, sre_parse.SubPattern, bool]]:
    """Every repeat in a parsed regex as (min, max, body, whether it sits in a repeat that runs more than once)."""
    for op, arg in sub:
        if op in _REPEATS:
            low, high, body = arg
            yield low, high, body, inside_repeat
            yield from _repeats(body, inside_repeat or high > 1)
        else:
            for child in _subpatterns(arg):
                yield from _repeats(child, inside_repeat)


def _subpatterns(arg: object) -> Iterator[sre_parse.SubPattern]:
    if isinstance(arg, sre_parse.SubPattern):
        yield arg
    elif isinstance(arg, tuple | list):
        for item in arg:
            yield from _subpatterns(item)


def _char_class(body: sre_parse.SubPattern) -> re.Pattern[str] | None:
    """A repeat's body as a one-character regex, or None when it is more than one character class."""
    while len(body) == 1 and body[0][0] is sre_parse.SUBPATTERN:
        body = body[0][1][3]
    source = _char_class_source(*body[0]) if len(body) == 1 else None
    return re.compile(source, re.IGNORECASE | re.DOTALL) if source is not None else None


def _char_class_source(op: object, arg: object) -> str | None:
    """A one-character item of a parsed regex written back as regex source, or None if it is not one."""
    if op is sre_parse.ANY:
        return "."
    if op is sre_parse.LITERAL:
        return re.escape(chr(arg))
    if op is sre_parse.NOT_LITERAL:
        return f"[^{re.escape(chr(arg))}]"
    if op is sre_parse.CATEGORY:
        return _CATEGORY_SOURCES.get(str(arg))
    if op is sre_parse.IN:
        parts = []
        for item_op, item_arg in arg:
            if item_op is sre_parse.NEGATE:
                parts.insert(0, "^")
            elif item_op is sre_parse.LITERAL:
                parts.append(re.escape(chr(item_arg)))
            elif item_op is sre_parse.RANGE:
                parts.append(f"{re.escape(chr(item_arg[0]))}-{re.escape(chr(item_arg[1]))}")
            elif item_op is sre_parse.CATEGORY and str(item_arg) in _CATEGORY_SOURCES:
                parts.append(_CATEGORY_SOURCES[str(item_arg)])
            else:
                return None
        return f"[{''.join(parts)}]"
    return None
