"""The one job parser behind slash commands, inline `--flags` in a prompt and the render CLI.

Where a value comes from, lowest priority first:

1. the field's default in the technique's config dataclass;
2. the `seed` argument (for the seed only);
3. `options`: slash-command options, keyed by field name or flag name (None means "not given");
4. inline flags in `text`: `a lighthouse in a storm | fog:0.5 --steps 150 --no "blurry, text"`.

So inline flags override slash options: what the person typed last wins.

Validation: a field's own `min`/`max` and `choices` always reject. A field with `limit=` metadata
("steps" or "size") is also capped by the guild's `Limits`: clamped with a note when
`limits.clamp`, rejected otherwise. A config that runs several variants (a /compare) says how many
times its value counts against a limit with `times_counted(limit)`: three variants of 200 steps
count as 600 steps. Every error is a `SpecError` whose message says what to fix.
"""

from __future__ import annotations

import dataclasses
import math
import re
import secrets
import shlex
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.jobs.spec import JobSpec

SEED_MAX = 2**31 - 1
_PHONE_DASH = re.compile(r"(?<!\S)[\u2013\u2014]+(?=[A-Za-z])")  # an en or em dash a phone made of "--"
_SMART_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"'})
_FLAG_TOKEN = re.compile(r"^--[A-Za-z]")
_FIRST_FLAG = re.compile(r"(?:^|\s)--[A-Za-z]")
_TRUE_WORDS = {"true", "yes", "on", "1"}
_FALSE_WORDS = {"false", "no", "off", "0"}


@dataclass(frozen=True)
class Limits:
    max_steps: int
    max_size: int
    clamp: bool = True

    def cap(self, limit: str) -> int:
        return {"steps": self.max_steps, "size": self.max_size}[limit]


class SpecError(ValueError):
    """A job request that cannot run as given; the message says what was wrong and what to do."""


@dataclass(frozen=True)
class ParsedJob:
    spec: JobSpec
    notes: list[str]  # e.g. "steps clamped to 1000, this server's limit"


@dataclass(frozen=True)
class _Field:
    """One config field as the parser sees it."""

    name: str
    flag: str  # without the leading "--"
    kind: type  # int, float, str or bool
    optional: bool  # None is a valid value
    default: Any
    meta: Mapping[str, Any]

    @property
    def required(self) -> bool:
        return self.default is None and not self.optional


def _technique(name: str):
    from bot.art.techniques import TECHNIQUES  # imports every technique: keep it out of module import time

    technique = TECHNIQUES.get(name.strip().lower())
    if technique is None:
        raise SpecError(f"Unknown technique {name!r}. Choose one of: {', '.join(TECHNIQUES)}.")
    return technique


def _fields(config_type: type) -> list[_Field]:
    hints = typing.get_type_hints(config_type)
    fields = []
    for field in dataclasses.fields(config_type):
        kind, optional = hints[field.name], False
        if typing.get_origin(kind) in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(kind) if a is not type(None)]
            kind, optional = args[0], len(args) < len(typing.get_args(kind))
        if kind not in (int, float, str, bool):
            raise TypeError(f"{config_type.__name__}.{field.name}: unsupported type {kind}")
        default = None if field.default is dataclasses.MISSING else field.default
        flag = field.metadata.get("flag") or field.name
        fields.append(_Field(field.name, flag, kind, optional, default, field.metadata))
    return fields


def _key(name: str) -> str:
    return name.strip().lstrip("-").lower().replace("-", "_")


def _known_flags(fields: list[_Field]) -> str:
    return ", ".join([f"--{f.flag.replace('_', '-')}" for f in fields] + ["--seed"])


def _split_text(text: str) -> tuple[str, list[tuple[str, str | None]]]:
    """Free text -> (prompt, [(flag, value or None)]). Flags start at the first `--word`."""
    text = _PHONE_DASH.sub("--", text).translate(_SMART_QUOTES)
    match = _FIRST_FLAG.search(text)
    if match is None:
        return text.strip(), []
    prompt, rest = text[: match.start()].strip(), text[match.start() :]
    try:
        tokens = shlex.split(rest)
    except ValueError:
        raise SpecError('A quote is not closed: put values with spaces in "double quotes".') from None
    flags: list[tuple[str, str | None]] = []
    for token in tokens:
        if _FLAG_TOKEN.match(token):
            name, has_value, value = token[2:].partition("=")
            flags.append((name, value if has_value else None))
        else:  # words after a flag are its value: `--no blurry, text` means "blurry, text"
            name, value = flags[-1]
            flags[-1] = (name, token if value is None else f"{value} {token}")
    return prompt, flags


def _convert(field: _Field, value: object) -> object:
    """A raw option value (a string from text, or a typed value from a slash command) as the field's type."""
    label = f"--{field.flag}"
    if value is None:
        if field.kind is bool:
            return True  # a bare `--flag`
        raise SpecError(f"{label} needs a value: {field.meta.get('help', '')}")
    if isinstance(value, str) and field.optional and field.kind is not str and value.lower() == "none":
        return None
    try:
        if field.kind is bool:
            if isinstance(value, bool):
                return value
            word = str(value).strip().lower()
            if word in _TRUE_WORDS | _FALSE_WORDS:
                return word in _TRUE_WORDS
            raise ValueError
        if field.kind is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)  # type: ignore[arg-type]
        if field.kind is float:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)  # type: ignore[arg-type]
            if not math.isfinite(number):
                raise ValueError
            return number
        return str(value).strip()
    except ValueError:
        kind = {bool: "true or false", int: "a whole number", float: "a number"}.get(field.kind, "text")
        raise SpecError(f"{label} must be {kind} (you gave {value!r}).") from None


def _range_text(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"between {low:g} and {high:g}"
    return f"at least {low:g}" if low is not None else f"at most {high:g}"


def _check(field: _Field, value: Any) -> Any:
    """Presence, choices and the field's own range; returns the value (a choice as the config spells it)."""
    label = field.flag.replace("_", "-")
    if value is None:
        if field.required and field.name == "prompt":
            raise SpecError(f"Write a prompt first, then any --options: {field.meta.get('help', '')}.")
        if field.required:
            raise SpecError(f"This technique needs --{label}: {field.meta.get('help', '')}.")
        return None
    choices = field.meta.get("choices")
    if choices:
        matches = [c for c in choices if c.lower() == str(value).lower()]
        if not matches:
            raise SpecError(f"{label} must be one of {', '.join(choices)} (you gave {value!r}).")
        return matches[0]
    if field.kind not in (int, float):
        return value
    low, high = field.meta.get("min"), field.meta.get("max")
    if (low is not None and value < low) or (high is not None and value > high):
        raise SpecError(f"{label} must be {_range_text(low, high)} (you gave {_number_text(value)}).")
    return value


def _within_limits(config: Any, fields: list[_Field], given: set[str], limits: Limits, notes: list[str]) -> Any:
    """The config with each field that has `limit=` metadata capped by the guild's limit: clamped with a
    note, or refused when the person gave the value and clamping is off."""
    capped = {}
    for field in fields:
        limit, value = field.meta.get("limit"), getattr(config, field.name)
        if limit is None or value is None:
            continue
        times = config.times_counted(limit) if hasattr(config, "times_counted") else 1
        low = field.meta.get("min")
        # A guild's cap below what this technique needs is lifted to the technique's own minimum.
        cap = max(limits.cap(limit) // times, low if low is not None else 0)
        if value <= cap:
            continue
        label = field.flag.replace("_", "-")
        if field.name in given and not limits.clamp:
            if times == 1:
                raise SpecError(f"{label} must be at most {cap} on this server (you gave {_number_text(value)}).")
            raise SpecError(f"{label} × {times} variants must be at most {limits.cap(limit)} on this server, so "
                            f"at most {cap} {label} each (you gave {_number_text(value)}).")
        each = f" (× {times} variants)" if times > 1 else ""
        notes.append(f"{label} clamped to {cap}{each}, this server's limit")
        capped[field.name] = field.kind(cap)
    return dataclasses.replace(config, **capped) if capped else config


def _number_text(value: float) -> str:
    """A number as the person typed it, shortened when it is absurdly long."""
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return text if len(text) <= 20 else f"{value:.3g}"


def option_range(technique: str, name: str) -> tuple[float, float]:
    """The (min, max) a technique's option accepts, for slash options that say so to Discord."""
    field = next(field for field in _fields(_technique(technique).config_type) if field.name == name)
    return field.meta["min"], field.meta["max"]


def limit_floor(limit: str) -> int:
    """The smallest guild limit ("steps" or "size") under which every technique can still run."""
    from bot.art.techniques import TECHNIQUES

    return max(
        field.meta.get("min") or 1
        for technique in TECHNIQUES.values()
        for field in _fields(technique.config_type)
        if field.meta.get("limit") == limit
    )


def _parse_seed(value: object) -> int:
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        seed = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise SpecError(f"--seed must be a whole number (you gave {value!r}).") from None
    if not 0 <= seed <= SEED_MAX:
        raise SpecError(f"seed must be between 0 and {SEED_MAX} (you gave {seed}).")
    return seed


def parse_job(
    technique: str,
    options: Mapping[str, object],
    *,
    limits: Limits,
    text: str | None = None,
    seed: int | None = None,
) -> ParsedJob:
    """Validate a job request into a `JobSpec`; see the module docstring for precedence and limits."""
    technique_impl = _technique(technique)
    fields = _fields(technique_impl.config_type)
    by_key = {_key(f.name): f for f in fields} | {_key(f.flag): f for f in fields}

    raw: dict[str, object] = {}  # field name -> raw value, later sources overwrite earlier ones
    raw_seed: object = seed

    def put(name: str, value: object) -> None:
        nonlocal raw_seed
        key = _key(name)
        if key == "seed":
            raw_seed = value
        elif key in by_key:
            raw[by_key[key].name] = value
        else:
            raise SpecError(f"Unknown option --{name.lstrip('-')}. Known options: {_known_flags(fields)}.")

    for name, value in options.items():
        if value is not None:
            put(name, value)
    if text is not None:
        prompt, flags = _split_text(text)
        if prompt:
            if "prompt" not in by_key:
                raise SpecError(
                    f"{technique_impl.name} takes no prompt text, only options: {_known_flags(fields)}."
                )
            raw["prompt"] = prompt
        for name, value in flags:
            put(name, value)  # a bare `--flag` stays None here and means True for a bool field

    values = {field.name: _check(field, _convert(field, raw[field.name]) if field.name in raw else field.default)
              for field in fields}
    try:
        config = technique_impl.config_type(**values)
    except ValueError as error:
        raise SpecError(str(error)) from None
    notes: list[str] = []
    config = _within_limits(config, fields, set(raw), limits, notes)
    final_seed = secrets.randbelow(SEED_MAX + 1) if raw_seed is None else _parse_seed(raw_seed)
    return ParsedJob(JobSpec(technique_impl.name, config, final_seed), notes)


def options_help(technique: str) -> list[tuple[str, str]]:
    """(flag, help with range and default) for every option of a technique, seed last."""
    rows = []
    for field in _fields(_technique(technique).config_type):
        help_text = field.meta.get("help", "")
        if field.meta.get("choices"):
            help_text += f"; one of {', '.join(field.meta['choices'])}"
        elif field.meta.get("min") is not None or field.meta.get("max") is not None:
            help_text += f"; {_range_text(field.meta.get('min'), field.meta.get('max'))}"
        if field.meta.get("limit"):
            help_text += ", capped by the server's limit"
        help_text += "; required" if field.required else f"; default {field.default}"
        rows.append((f"--{field.flag.replace('_', '-')}", help_text))
    rows.append(("--seed", f"random seed, 0 to {SEED_MAX}; default random (same seed, same image)"))
    return rows
