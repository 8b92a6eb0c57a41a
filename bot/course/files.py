"""The course as files: one Markdown file per lesson, YAML front matter on top; see course/README.md.

`load_course(folder, limits=...)` reads every lesson file and returns the valid lessons and every
problem it found, each with the file and line to fix, so a host sees all mistakes in one pass:

    ---
    number: 1
    slug: optimisation
    title: Optimisation is magic
    summary: One or two sentences.
    links: {video: https://..., notebook: https://..., reading: https://..., paper: https://...}
    exercises:
      - id: pixels-first-light
        title: First light
        brief: What to do.
        technique: imagine
        preset: {prompt: a lighthouse, param: pixels, steps: 150, size: 224, seed: 7}
        submit: What to hand in.
    ---
    # The lesson text in Markdown

Every preset goes through the job parser with the bot's limits, so an exercise that would be refused
in Discord is refused here first. Image options (`content`, `target`, ...) are paths inside the
course folder, checked to be readable images. Pure Python: no Discord, no database.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Any
from urllib.parse import urlsplit

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.art.imagefiles import ImageRejected, load_image_file
from bot.jobs.parser import Limits, SpecError, parse_job

MAX_FILE_BYTES = 256 * 1024
MAX_URL_LENGTH = 512  # a Discord link button's URL limit
ID_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
LINK_KINDS = ("video", "notebook", "reading", "paper")
SKIPPED_FILES = {"readme.md"}


@dataclass(frozen=True)
class Problem:
    path: Path
    line: int  # 1-based line in the file; 0 when the problem is the folder itself
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass(frozen=True)
class ExerciseFile:
    id: str
    title: str
    brief: str
    technique: str
    preset: dict[str, object]  # field name -> value; image fields hold the absolute resolved path as text
    submit: str
    images: dict[str, Path]  # image field -> absolute resolved path inside the course folder


@dataclass(frozen=True)
class LessonFile:
    number: int
    slug: str
    title: str
    summary: str
    links: dict[str, str]  # kind (video, notebook, reading, paper) -> URL, in the file's order
    exercises: tuple[ExerciseFile, ...]
    body: str  # the Markdown after the front matter, surrounding blank lines removed
    path: Path
    content_hash: str  # sha256 of the file's bytes, hex


# --- the schema --------------------------------------------------------------------------------


def _check_url(value: str) -> str:
    if len(value) > MAX_URL_LENGTH:
        raise ValueError(f"a link can be at most {MAX_URL_LENGTH} characters")
    if any(character.isspace() for character in value):
        raise ValueError("a link cannot contain spaces")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be a full http:// or https:// address (you gave {value!r})")
    return value


Url = Annotated[str, AfterValidator(_check_url)]
Slug = Annotated[str, Field(min_length=1, max_length=40, pattern=ID_PATTERN)]


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Links(_Schema):
    video: Url | None = None
    notebook: Url | None = None
    reading: Url | None = None
    paper: Url | None = None


class _Exercise(_Schema):
    id: Slug
    title: str = Field(min_length=1, max_length=80)
    brief: str = Field(min_length=1, max_length=1000)
    technique: str = Field(min_length=1)
    preset: dict[str, Any] = Field(default_factory=dict)
    submit: str = Field(min_length=1, max_length=300)


class _Lesson(_Schema):
    number: int = Field(ge=1, le=999)
    slug: Slug
    title: str = Field(min_length=1, max_length=80)
    summary: str = Field(min_length=1, max_length=300)
    links: _Links = Field(default_factory=_Links)
    exercises: list[_Exercise] = Field(default_factory=list, max_length=25)


def _allowed_keys(loc: tuple) -> list[str]:
    """The field names allowed in the mapping at `loc` (a pydantic location without the bad key)."""
    if not loc:
        return list(_Lesson.model_fields)
    if loc == ("links",):
        return list(_Links.model_fields)
    if len(loc) == 2 and loc[0] == "exercises":
        return list(_Exercise.model_fields)
    return []


# --- where things are in the file ---------------------------------------------------------------


@dataclass
class _Source:
    path: Path
    first_line: int  # the file line of the YAML's first line (the line after the opening ---)
    root: Node

    def line_of(self, loc: tuple) -> int:
        """The file line of the key or item at `loc`; the deepest existing parent when it is missing."""
        node, line = self.root, self.root.start_mark.line
        for part in loc:
            if isinstance(node, MappingNode):
                entry = next(((k, v) for k, v in node.value if isinstance(k, ScalarNode) and k.value == str(part)),
                             None)
                if entry is None:
                    break
                line, node = entry[0].start_mark.line, entry[1]
            elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                node = node.value[part]
                line = node.start_mark.line
            else:
                break
        return self.first_line + line

    def problem(self, loc: tuple, message: str) -> Problem:
        return Problem(self.path, self.line_of(loc), message)


def _walk(node: Node, seen: set[int], first_line: int, used_on: int | None = None) -> Iterator[tuple[int, str]]:
    """(file line, problem) for YAML the course refuses: aliases (a node met twice) and duplicate keys.

    `used_on` is the line of the key whose value `node` is: where an alias is used, not where its anchor is.
    """
    if id(node) in seen:
        anchor_line = first_line + node.start_mark.line
        yield (used_on or anchor_line), ("YAML anchors and aliases (&name, *name) are not supported: write the "
                                         f"value out (the anchor is on line {anchor_line})")
        return
    seen.add(id(node))
    if isinstance(node, MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            line = first_line + key.start_mark.line
            if isinstance(key, ScalarNode):
                if key.value in first:
                    yield line, f"`{key.value}` is given twice (first on line {first[key.value]})"
                first.setdefault(key.value, line)
            yield from _walk(key, seen, first_line, line)
            yield from _walk(value, seen, first_line, line)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            yield from _walk(item, seen, first_line)


def _yaml_error(path: Path, first_line: int, error: yaml.MarkedYAMLError) -> Problem:
    mark = error.problem_mark or error.context_mark
    line = first_line + mark.line if mark is not None else first_line - 1
    what = " ".join(part for part in (error.context, error.problem) if part) or "not valid YAML"
    return Problem(path, line, f"YAML error in the front matter: {what}")


# --- one file ------------------------------------------------------------------------------------


@dataclass
class _Claim:
    """Something that must be unique across the course: a lesson number, slug or exercise id."""

    kind: str
    value: object
    path: Path
    line: int


@dataclass
class _Checked:
    lesson: LessonFile | None
    problems: list[Problem]
    claims: list[_Claim]


def _split_front_matter(path: Path, text: str) -> tuple[str, str, int] | Problem:
    """(yaml text, body, file line of the body's first line) or the problem with the front matter."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        return Problem(path, 1, "a lesson file must start with front matter: a line `---`, the YAML fields, "
                                "then another `---` line, then the lesson text")
    for index in range(1, len(lines)):
        if lines[index].rstrip() == "---":
            return "".join(lines[1:index]), "".join(lines[index + 1 :]), index + 2
    return Problem(path, 1, "the front matter opened on line 1 is never closed: add a `---` line after the fields")


def _friendly(error: dict, source: _Source, data: Any) -> Problem:
    loc = tuple(error["loc"])
    kind = error["type"]
    where = _describe(loc, data)
    if kind == "missing":
        return source.problem(loc[:-1], f"{where}: this required field is missing")
    if kind == "extra_forbidden":
        name = str(loc[-1])
        allowed = _allowed_keys(loc[:-1])
        close = difflib.get_close_matches(name, allowed, n=1)
        hint = f"; did you mean `{close[0]}`?" if close else f"; the fields here are: {', '.join(allowed)}"
        return source.problem(loc, f"{where}: unknown field{hint}")
    if kind == "string_pattern_mismatch":
        return source.problem(loc, f"{where}: use only lowercase letters, digits and single '-' between them "
                                   f"(you gave {error['input']!r})")
    if kind == "invalid_key":
        return source.problem(loc, f"field names must be text (you gave {loc[-1]!r})")
    ctx = error.get("ctx") or {}
    messages = {
        "int_type": "must be a whole number",
        "string_type": "must be text",
        "string_too_short": "cannot be empty",
        "string_too_long": f"is too long: at most {ctx.get('max_length')} characters",
        "too_long": f"can have at most {ctx.get('max_length')} items",
        "greater_than_equal": f"must be at least {ctx.get('ge')}",
        "less_than_equal": f"must be at most {ctx.get('le')}",
        "dict_type": "must be fields: `name: value` lines indented under it",
        "model_type": "must be fields: `name: value` lines indented under it",
        "list_type": "must be a list: one `- ` line per item",
    }
    message = messages.get(kind) or error["msg"].removeprefix("Value error, ")
    given = error.get("input")
    if kind in messages and isinstance(given, str | int | float | bool) and len(str(given)) <= 60:
        message += f" (you gave {given!r})"
    elif kind in ("string_too_long", "too_long") and isinstance(given, str | list):
        message += f" (it has {len(given)})"
    return source.problem(loc, f"{where}: {message}")


def _describe(loc: tuple, data: Any) -> str:
    """`title`, `links.video` or exercise 2 (pixels-first-light) `preset` for a pydantic location."""
    if len(loc) >= 2 and loc[0] == "exercises" and isinstance(loc[1], int):
        item = data.get("exercises")[loc[1]] if isinstance(data, dict) else None
        ident = item.get("id") if isinstance(item, dict) else None
        label = f"exercise {loc[1] + 1}" + (f" ({ident})" if isinstance(ident, str) else "")
        rest = ".".join(str(part) for part in loc[2:])
        return f"{label} `{rest}`" if rest else label
    return "`" + ".".join(str(part) for part in loc) + "`"


def _technique_fields() -> dict[str, dict[str, dataclasses.Field]]:
    from bot.art.techniques import TECHNIQUES  # imports torch: only when a course is checked

    return {name: {f.name: f for f in dataclasses.fields(t.config_type)} for name, t in TECHNIQUES.items()}


_LABEL = r"(?<![\w-])-*{}(?![\w-])"


def _blamed_option(message: str, keys: list[str]) -> str | None:
    """The preset key a parser message names first (`steps must be ...`, `--tv-weight must be ...`)."""
    positions = []
    for key in keys:
        for label in {key, key.replace("_", "-")}:
            match = re.search(_LABEL.format(re.escape(label)), message)
            if match:
                positions.append((match.start(), key))
    return min(positions)[1] if positions else None


class _CourseChecker:
    def __init__(self, directory: Path, limits: Limits):
        self.directory = directory
        self.root = directory.resolve()
        self.limits = limits
        self.fields = _technique_fields()
        self.image_cache: dict[Path, str | None] = {}  # resolved path -> problem text, None when fine

    def check_file(self, path: Path) -> _Checked:
        checked = _Checked(None, [], [])
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                checked.problems.append(Problem(path, 1, f"the file is {size // 1024} KiB; a lesson file can be at "
                                                         f"most {MAX_FILE_BYTES // 1024} KiB"))
                return checked
            data = path.read_bytes()
        except OSError as error:
            checked.problems.append(Problem(path, 1, f"cannot read the file: {error.strerror or error}"))
            return checked
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            line = data[: error.start].count(b"\n") + 1
            checked.problems.append(Problem(path, line, "the file is not UTF-8 text: save it as UTF-8"))
            return checked

        split = _split_front_matter(path, text)
        if isinstance(split, Problem):
            checked.problems.append(split)
            return checked
        front, body, body_line = split
        first_line = 2
        loader = yaml.SafeLoader(front)
        try:
            root = loader.get_single_node()
            if root is None:
                checked.problems.append(Problem(path, 1, "the front matter is empty: it needs number, slug, title, "
                                                         "summary and exercises"))
                return checked
            source = _Source(path, first_line, root)
            refused = [Problem(path, line, message) for line, message in _walk(root, set(), first_line)]
            if refused:
                checked.problems.extend(refused)
                return checked
            raw = loader.construct_document(root)
        except yaml.MarkedYAMLError as error:
            checked.problems.append(_yaml_error(path, first_line, error))
            return checked
        except yaml.YAMLError as error:
            checked.problems.append(Problem(path, first_line, f"YAML error in the front matter: {error}"))
            return checked
        finally:
            loader.dispose()
        if not isinstance(raw, dict):
            checked.problems.append(source.problem((), "the front matter must be fields (`name: value` lines), "
                                                       f"not a {type(raw).__name__}"))
            return checked

        lesson = None
        try:
            lesson = _Lesson.model_validate(raw)
        except ValidationError as error:
            checked.problems.extend(_friendly(e, source, raw) for e in error.errors())

        if not body.strip():
            checked.problems.append(Problem(path, body_line - 1, "the lesson text after the front matter is empty"))
        self._claims(raw, source, checked)
        exercises = self._exercises(raw, source, checked)

        if lesson is not None and exercises is not None and not checked.problems:
            links = {kind: url for kind, url in raw.get("links", {}).items() if url is not None}
            checked.lesson = LessonFile(
                number=lesson.number, slug=lesson.slug, title=lesson.title.strip(), summary=lesson.summary.strip(),
                links=links, exercises=tuple(exercises), body=body.strip("\n").rstrip(), path=path,
                content_hash=hashlib.sha256(data).hexdigest(),
            )
        return checked

    def _claims(self, raw: dict, source: _Source, checked: _Checked) -> None:
        for key in ("number", "slug"):
            value = raw.get(key)
            if isinstance(value, int | str) and not isinstance(value, bool):
                checked.claims.append(_Claim(key, value, source.path, source.line_of((key,))))
        items = raw.get("exercises")
        for index, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                checked.claims.append(_Claim("exercise id", item["id"], source.path,
                                             source.line_of(("exercises", index, "id"))))

    def _exercises(self, raw: dict, source: _Source, checked: _Checked) -> list[ExerciseFile] | None:
        """Every exercise with its preset checked; None when any of them has a problem."""
        items = raw.get("exercises")
        if not isinstance(items, list):
            return None if "exercises" in raw else []
        exercises: list[ExerciseFile] | None = []
        for index, item in enumerate(items):
            exercise = self._exercise(item, ("exercises", index), source, checked) if isinstance(item, dict) else None
            if exercise is None:
                exercises = None
            elif exercises is not None:
                exercises.append(exercise)
        return exercises

    def _exercise(self, item: dict, loc: tuple, source: _Source, checked: _Checked) -> ExerciseFile | None:
        technique = item.get("technique")
        label = f"exercise {loc[1] + 1}" + (f" ({item['id']})" if isinstance(item.get("id"), str) else "")
        if not isinstance(technique, str):
            return None  # the schema reports it
        fields = self.fields.get(technique)
        if fields is None:
            close = difflib.get_close_matches(technique, list(self.fields), n=1)
            hint = f"did you mean `{close[0]}`? " if close else ""
            checked.problems.append(source.problem(
                (*loc, "technique"),
                f"{label}: unknown technique {technique!r}; {hint}choose one of {', '.join(self.fields)}"))
            return None
        preset = item.get("preset", {})
        if not isinstance(preset, dict):
            return None  # the schema reports it

        problems: list[Problem] = []
        options: dict[str, object] = {}
        images: dict[str, Path] = {}
        for key, value in preset.items():
            key_loc = (*loc, "preset", key)
            if not isinstance(key, str) or (key not in fields and key != "seed"):
                close = difflib.get_close_matches(str(key), [*fields, "seed"], n=1)
                hint = f"did you mean `{close[0]}`? " if close else ""
                problems.append(source.problem(key_loc, f"{label}: {technique} has no option `{key}`; {hint}"
                                                        f"its options are: {', '.join([*fields, 'seed'])}"))
            elif value is None or isinstance(value, list | dict) or not isinstance(value, str | int | float | bool):
                problems.append(source.problem(key_loc, f"{label}: option `{key}` needs a single value "
                                                        "(text, a number, or true/false)"))
            elif key != "seed" and fields[key].metadata.get("image"):
                path_or_problem = self._image(value)
                if isinstance(path_or_problem, str):
                    problems.append(source.problem(key_loc, f"{label}: `{key}`: {path_or_problem}"))
                else:
                    images[key] = path_or_problem
                    options[key] = str(path_or_problem)
            else:
                options[key] = value
        if problems:
            checked.problems.extend(problems)
            return None

        seed = options.get("seed")
        try:
            job = parse_job(technique, {k: v for k, v in options.items() if k != "seed"}, limits=self.limits,
                            text=None, seed=seed)  # type: ignore[arg-type]
        except (SpecError, ValueError) as error:
            blamed = _blamed_option(str(error), list(options))
            where = (*loc, "preset", blamed) if blamed else (*loc, "preset")
            checked.problems.append(source.problem(where, f"{label}: the preset is refused: {error}"))
            return None
        if not all(isinstance(item.get(name), str) for name in ("id", "title", "brief", "submit")):
            return None  # the schema reports it
        # The values as the parser understood them: `"0.5"` becomes 0.5, `Fourier` becomes `fourier`.
        preset = {key: job.spec.seed if key == "seed" else getattr(job.spec.config, key) for key in options}
        return ExerciseFile(
            id=item["id"], title=item["title"].strip(), brief=item["brief"].strip(), technique=technique,
            preset=preset, submit=item["submit"].strip(), images=images,
        )

    def _image(self, value: object) -> Path | str:
        """The resolved image path inside the course folder, or what is wrong with it."""
        if not isinstance(value, str) or not value.strip():
            return "give the path of an image file inside the course folder, e.g. images/harbour.png"
        if "\\" in value:
            return f"write paths with / (you gave {value!r})"
        relative = PurePosixPath(value)
        if relative.is_absolute() or re.match(r"^[A-Za-z]:", value) or ".." in relative.parts:
            return f"the image must be inside the course folder: give a path like images/x.png (you gave {value!r})"
        resolved = (self.directory / relative).resolve()
        if not resolved.is_relative_to(self.root):
            return f"{value!r} leads outside the course folder (a link?): copy the image into the course folder"
        if resolved not in self.image_cache:
            if not resolved.is_file():
                self.image_cache[resolved] = f"there is no image file {value!r} in the course folder"
            else:
                try:
                    load_image_file(resolved)
                    self.image_cache[resolved] = None
                except ImageRejected as error:
                    self.image_cache[resolved] = f"{value!r}: {error}"
        problem = self.image_cache[resolved]
        return resolved if problem is None else problem


def lesson_paths(directory: Path) -> list[Path]:
    """The lesson files of a course folder: every `*.md` but README.md, sorted by name."""
    return sorted(p for p in directory.glob("*.md") if p.name.lower() not in SKIPPED_FILES and p.is_file())


def load_course(directory: Path, *, limits: Limits) -> tuple[list[LessonFile], list[Problem]]:
    """The valid lessons (sorted by number) and every problem found in the course folder.

    A lesson with any problem is left out. Of two files claiming the same lesson number, slug or
    exercise id, the one later by file name is the one with the problem.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return [], [Problem(directory, 0, "no such course folder: set COURSE_DIR or pass --dir")]
    paths = lesson_paths(directory)
    if not paths:
        return [], [Problem(directory, 0, "the course folder has no lesson files (NN-slug.md)")]
    checker = _CourseChecker(directory, limits)
    results = [(path, checker.check_file(path)) for path in paths]

    first: dict[tuple[str, object], _Claim] = {}
    for _, checked in results:
        for claim in checked.claims:
            earlier = first.setdefault((claim.kind, claim.value), claim)
            if earlier is not claim:
                where = "this file" if earlier.path == claim.path else earlier.path.name
                checked.problems.append(Problem(
                    claim.path, claim.line,
                    f"{claim.kind} {claim.value!r} is already used in {where}, line {earlier.line}"))
                checked.lesson = None

    problems = sorted((p for _, checked in results for p in checked.problems), key=lambda p: (str(p.path), p.line))
    lessons = sorted((checked.lesson for _, checked in results if checked.lesson), key=lambda lesson: lesson.number)
    return lessons, problems
