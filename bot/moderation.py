"""Per-guild moderation of prompts: blocked words, phrases and regex patterns, and the log of refusals.

Words and phrases are matched on a normalised copy of the text (NFKC, casefold, invisible characters
dropped, every run of spaces, punctuation or underscores read as one space), so the term "bad word"
catches "Bad  Word", "bad-word" and "ｂａｄ word", while the term "ass" never matches inside "class".
A term spelled out letter by letter ("b a d", "b.a.d") is caught too.

Patterns are Python regexes, matched with the `regex` package, which can stop a runaway match. A pattern is
refused on add when its shape can backtrack for seconds: a repeat inside a repeat (`(a+)+`), or two
open-ended repeats that can match the same character (`.*a.*x` took 12 s on 2,000 characters). What is left
is at worst quadratic (`a.*b` on 6,000 "a"s takes about 70 ms).

A check runs in a worker thread, off the event loop, within one time budget for all of a guild's terms and
all the texts of a prompt; a check that runs out of time refuses the prompt (ModerationTimedOut). A guild
may block at most `max_terms` terms, so the budget is rarely reached.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
import re
import time
import unicodedata
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from re import _parser as sre_parse  # private, but the stdlib's own parser: the way to see a regex's shape

import regex
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import UserFacingError
from models import BlockedTerm, ModerationEvent

MAX_TERM_CHARS = 200  # the width of BlockedTerm.value and ModerationEvent.matched
MAX_LOGGED_PROMPT_CHARS = 2000  # a refused prompt is kept this long in the log; enough for a host to judge it
KEPT_REFUSALS_PER_GUILD = 200  # older refusals are deleted as new ones are logged

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
    patterns: tuple[tuple[str, regex.Pattern[str]], ...]  # (as typed, compiled)


class ModerationTimedOut(UserFacingError):
    """Checking a prompt ran out of its time budget; the prompt is refused rather than let through unchecked."""

    def __init__(self, pattern: str | None) -> None:
        super().__init__(
            "Checking this prompt against the server's blocked words took too long, so it was not queued. "
            "Please shorten the prompt and try again, or tell a host: some of the server's blocked patterns "
            "may be too slow."
        )
        self.pattern = pattern  # the pattern being matched when time ran out, for the hosts' log


class ModerationService:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, max_terms: int = 50, budget_seconds: float = 0.25
    ) -> None:
        self.sessions = sessions
        self.max_terms = max_terms  # blocked words and patterns per guild, together
        self.budget_seconds = budget_seconds  # for one check of all of a prompt's texts against all the terms
        self._cache: dict[int, _CompiledTerms] = {}
        # Per guild, changes and loads of the terms take turns: the cap is counted and used at once, a load
        # never caches terms that a change has just replaced, and concurrent checks compile the terms once.
        self._locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def add_term(self, guild_id: int, kind: str, value: str, added_by: int) -> Term:
        """Blocks a word, phrase or pattern; raises UserFacingError for a bad or duplicate term, or past the cap."""
        kind = TermKind(kind)
        stored = _validated_word(value) if kind is TermKind.WORD else _validated_pattern(value)
        async with self._locks[guild_id]:
            try:
                async with self.sessions.begin() as session:
                    count = await session.scalar(
                        select(func.count()).select_from(BlockedTerm).where(BlockedTerm.guild_id == guild_id)
                    )
                    if count is not None and count >= self.max_terms:
                        raise UserFacingError(
                            f"This server already blocks {count} words and patterns, and the limit is "
                            f"{self.max_terms}. Remove one with `/easel moderation remove` to add `{stored}`."
                        )
                    row = BlockedTerm(guild_id=guild_id, kind=kind.value, value=stored, added_by=added_by)
                    session.add(row)
                    await session.flush()
                    term = Term.from_row(row)
            except IntegrityError:
                raise UserFacingError(f"The {kind} `{stored}` is already blocked here.") from None
            self._cache.pop(guild_id, None)
        return term

    async def remove_term(self, guild_id: int, kind: str, value: str) -> bool:
        """Unblocks a term, written as when it was added (words in any case or spacing)."""
        kind = TermKind(kind)
        stored = _normalise_words(value) if kind is TermKind.WORD else value.strip()
        async with self._locks[guild_id]:
            async with self.sessions.begin() as session:
                result = await session.execute(
                    delete(BlockedTerm).where(
                        BlockedTerm.guild_id == guild_id, BlockedTerm.kind == kind.value, BlockedTerm.value == stored
                    )
                )
            self._cache.pop(guild_id, None)
        return result.rowcount > 0

    async def list_terms(self, guild_id: int) -> list[Term]:
        async with self.sessions() as session:
            rows = await session.scalars(
                select(BlockedTerm)
                .where(BlockedTerm.guild_id == guild_id)
                .order_by(BlockedTerm.kind, BlockedTerm.value)
            )
            return [Term.from_row(row) for row in rows]

    async def check_texts(self, guild_id: int, texts: Sequence[str]) -> str | None:
        """The first blocked term that one of the texts matches (as the host wrote it), or None.

        Each text is checked whole and on its own. Raises ModerationTimedOut when the check runs past the budget.
        """
        texts = tuple(text for text in texts if text)
        terms = await self._compiled_terms(guild_id)
        if not texts or not (terms.words or terms.patterns):
            return None
        try:
            return await asyncio.to_thread(_first_match, terms, texts, self.budget_seconds)
        except ModerationTimedOut as error:
            log.warning(
                "guild %s: checking a prompt against %d blocked terms took over %.2f s, at pattern %r; "
                "the prompt was refused. A host may want to simplify or remove that pattern.",
                guild_id, len(terms.words) + len(terms.patterns), self.budget_seconds, error.pattern,
            )
            raise

    async def check(self, guild_id: int, text: str) -> str | None:
        """check_texts for a single text."""
        return await self.check_texts(guild_id, (text,))

    async def log_refusal(self, guild_id: int, user_id: int, channel_id: int, prompt: str, matched: str) -> Refusal:
        """Logs a refused prompt (shortened), keeping only the guild's latest KEPT_REFUSALS_PER_GUILD."""
        if len(prompt) > MAX_LOGGED_PROMPT_CHARS:
            prompt = prompt[: MAX_LOGGED_PROMPT_CHARS - 1] + "…"
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
            older = (
                select(ModerationEvent.id)
                .where(ModerationEvent.guild_id == guild_id)
                .order_by(ModerationEvent.created_at.desc(), ModerationEvent.id.desc())
                .offset(KEPT_REFUSALS_PER_GUILD)
            )
            await session.execute(
                delete(ModerationEvent).where(ModerationEvent.id.in_(older)),
                execution_options={"synchronize_session": False},
            )
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
        """The guild's terms, compiled once per change."""
        cached = self._cache.get(guild_id)
        if cached is not None:
            return cached
        async with self._locks[guild_id]:
            cached = self._cache.get(guild_id)  # another check may have compiled them while this one waited
            if cached is None:
                async with self.sessions() as session:
                    rows = await session.execute(
                        select(BlockedTerm.kind, BlockedTerm.value)
                        .where(BlockedTerm.guild_id == guild_id)
                        .order_by(BlockedTerm.id)
                    )
                    terms = [(TermKind(kind), value) for kind, value in rows]
                # Off the loop too: `regex` takes 0.3 s to compile `(?:a{1000}){1000}`, which the shape check lets by.
                cached = self._cache[guild_id] = await asyncio.to_thread(_compile_terms, terms)
            return cached


def _compile_terms(terms: Sequence[tuple[TermKind, str]]) -> _CompiledTerms:
    return _CompiledTerms(
        words=tuple((value, " ".join(value.replace(" ", ""))) for kind, value in terms if kind is TermKind.WORD),
        patterns=tuple(
            (value, regex.compile(value, regex.IGNORECASE | regex.VERSION0))
            for kind, value in terms if kind is TermKind.PATTERN
        ),
    )


def _first_match(terms: _CompiledTerms, texts: Sequence[str], budget_seconds: float) -> str | None:
    """The first term that one of the texts matches, or None; raises ModerationTimedOut past the budget.

    Runs in a worker thread. `concurrent=True` lets `regex` release the GIL while it matches: without it a long
    match would hold up the event loop as surely as if it ran there.
    """
    deadline = time.monotonic() + budget_seconds
    texts = [_without_invisibles(unicodedata.normalize("NFKC", text)) for text in texts]
    if terms.words:  # linear in the text: no deadline needed
        for text in texts:
            padded = f" {_normalise_words(text)} "
            for word, spelled in terms.words:
                if f" {word} " in padded or f" {spelled} " in padded:
                    return word
    for text in texts:
        for source, pattern in terms.patterns:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ModerationTimedOut(source)
            try:
                if pattern.search(text, timeout=remaining, concurrent=True):
                    return source
            except TimeoutError:
                raise ModerationTimedOut(source) from None
    return None


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
