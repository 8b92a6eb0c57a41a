"""The course as files: the shipped course loads cleanly, and broken files name the right file and line."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from bot.course.files import ExerciseFile, LessonFile, Problem, load_course
from bot.jobs.parser import Limits, parse_job

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHIPPED_COURSE = PROJECT_ROOT / "course"
LIMITS = Limits(max_steps=1000, max_size=512, clamp=False)  # the bot's default MAX_STEPS and MAX_SIZE

# What "runs well on a GPU in under a minute" means for a shipped preset: (steps, size) at most.
RUNTIME_BUDGET = {"imagine": (300, 256), "style": (300, 384), "dream": (60, 384), "nca": (600, 256),
                  "cppn": (10_000, 512)}


def lesson_text(number: int = 1, slug: str = "first", exercises: str | None = None, extra: str = "",
                body: str = "# Hello\n\nSome text.\n") -> str:
    """A valid lesson file; `exercises` replaces the exercise list (indented two spaces under it)."""
    if exercises is None:
        exercises = f"""\
  - id: {slug}-one
    title: One
    brief: Draw something.
    technique: cppn
    preset:
      size: 64
      seed: 3
    submit: The image.
"""
    return (f"---\nnumber: {number}\nslug: {slug}\ntitle: Lesson {number}\nsummary: A summary.\n{extra}"
            f"exercises:\n{exercises}---\n{body}")


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text) if text.startswith("\n") else text)
    return path


def line_of(path: Path, fragment: str) -> int:
    """The 1-based line of the first line of `path` containing `fragment`."""
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if fragment in line)


def only_problem(folder: Path) -> Problem:
    _, problems = load_course(folder, limits=LIMITS)
    assert len(problems) == 1, problems
    return problems[0]


@pytest.fixture
def course(tmp_path: Path) -> Path:
    folder = tmp_path / "course"
    (folder / "images").mkdir(parents=True)
    Image.new("RGBA", (24, 24), (200, 40, 40, 255)).save(folder / "images" / "dot.png")
    Image.new("RGB", (40, 30), (20, 90, 160)).save(folder / "images" / "sea.png")
    return folder


# --- the shipped course -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> tuple[list[LessonFile], list[Problem]]:
    return load_course(SHIPPED_COURSE, limits=LIMITS)


def test_the_shipped_course_loads_without_problems(shipped):
    lessons, problems = shipped
    assert problems == []
    assert len(lessons) >= 6
    assert [lesson.number for lesson in lessons] == sorted({lesson.number for lesson in lessons})
    for lesson in lessons:
        assert lesson.path.name.startswith(f"{lesson.number:02d}-{lesson.slug}")
        assert 2 <= len(lesson.exercises) <= 3, lesson.slug
        assert "## What to look for while it runs" in lesson.body, lesson.slug
        assert len(lesson.body) > 1500, lesson.slug  # a few real paragraphs, not a stub
        assert all(url.startswith("https://") for url in lesson.links.values())


def test_the_shipped_course_covers_the_arc(shipped):
    lessons, _ = shipped
    exercises = [exercise for lesson in lessons for exercise in lesson.exercises]
    imagine_params = {e.preset.get("param", "stack") for e in exercises if e.technique == "imagine"}
    assert {"pixels", "stack", "fourier"} <= imagine_params
    assert {"imagine", "style", "dream", "nca", "cppn"} <= {e.technique for e in exercises}
    first_techniques = [lesson.exercises[0].technique for lesson in lessons[:6]]
    assert first_techniques == ["imagine", "imagine", "style", "dream", "nca", "cppn"]
    assert lessons[0].exercises[0].preset["param"] == "pixels"


def test_every_shipped_preset_parses_and_fits_the_time_budget(shipped):
    lessons, _ = shipped
    for exercise in (e for lesson in lessons for e in lesson.exercises):
        options = {k: v for k, v in exercise.preset.items() if k != "seed"}
        job = parse_job(exercise.technique, options, limits=LIMITS, seed=exercise.preset.get("seed"))  # type: ignore[arg-type]
        max_steps, max_size = RUNTIME_BUDGET[exercise.technique]
        assert job.spec.config.steps <= max_steps and job.spec.config.size <= max_size, exercise.id
        assert job.notes == []


def test_shipped_images_are_small_pngs_inside_the_course(shipped):
    lessons, _ = shipped
    images = {path for lesson in lessons for e in lesson.exercises for path in e.images.values()}
    assert images, "the style, dream and nca exercises use the course's images"
    for path in images:
        assert path.is_absolute() and path.is_relative_to(SHIPPED_COURSE.resolve() / "images")
        assert path.suffix == ".png" and path.stat().st_size < 20_000
        with Image.open(path) as image:
            assert max(image.size) <= 256
    with Image.open(SHIPPED_COURSE / "images" / "flower.png") as flower:
        assert flower.convert("RGBA").getpixel((0, 0))[3] == 0  # the NCA target has a transparent background


# --- a good course -------------------------------------------------------------------------------


def test_a_good_lesson_becomes_a_lesson_file(course):
    text = lesson_text(extra="links:\n  video: https://example.com/v\n  reading: http://example.org/r?a=1\n",
                       exercises="""\
  - id: grow-dot
    title: Grow a dot
    brief: >-
      Grow it.
    technique: nca
    preset:
      target: images/dot.png
      steps: 20
      size: 64
      seed: 5
    submit: The animation.
  - id: paint
    title: Paint
    brief: Paint it.
    technique: style
    preset: {content: ./images/sea.png, style: images/dot.png, steps: 10}
    submit: The picture.
""", body="\n\n# Title\n\nText with a trailing blank line.\n\n")
    path = write(course, "01-first.md", text)
    lessons, problems = load_course(course, limits=LIMITS)
    assert problems == []
    (lesson,) = lessons
    assert (lesson.number, lesson.slug, lesson.title, lesson.summary) == (1, "first", "Lesson 1", "A summary.")
    assert lesson.links == {"video": "https://example.com/v", "reading": "http://example.org/r?a=1"}
    assert lesson.body == "# Title\n\nText with a trailing blank line."
    assert lesson.path == path
    import hashlib

    assert lesson.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    grow, paint = lesson.exercises
    dot = (course / "images" / "dot.png").resolve()
    assert grow == ExerciseFile(id="grow-dot", title="Grow a dot", brief="Grow it.", technique="nca",
                                preset={"target": str(dot), "steps": 20, "size": 64, "seed": 5},
                                submit="The animation.", images={"target": dot})
    assert paint.images == {"content": (course / "images" / "sea.png").resolve(), "style": dot}
    job = parse_job("style", paint.preset, limits=LIMITS)  # the stored preset is ready for the parser
    assert job.spec.config.content == str((course / "images" / "sea.png").resolve())


def test_readme_is_skipped_and_lessons_are_sorted_by_number(course):
    write(course, "README.md", "# How to write a course\n")
    write(course, "a-later.md", lesson_text(number=2, slug="later"))
    write(course, "b-earlier.md", lesson_text(number=1, slug="earlier"))
    lessons, problems = load_course(course, limits=LIMITS)
    assert problems == []
    assert [lesson.slug for lesson in lessons] == ["earlier", "later"]


def test_a_lesson_without_exercises_is_fine_and_crlf_files_work(course):
    write(course, "01-intro.md", "---\r\nnumber: 1\r\nslug: intro\r\ntitle: Intro\r\nsummary: Hi.\r\n---\r\nText\r\n")
    lessons, problems = load_course(course, limits=LIMITS)
    assert problems == [] and lessons[0].exercises == () and lessons[0].body == "Text"


# --- broken files: each problem names its file and line -----------------------------------------


def test_yaml_syntax_error_gives_the_file_line(course):
    text = "---\nnumber: 1\nslug: first\ntitle: [unclosed\nsummary: A summary.\n---\nText\n"
    path = write(course, "01-first.md", text)
    problem = only_problem(course)
    assert problem.path == path
    assert problem.line in (4, 5)  # the scanner notices at the start of the next key at the latest
    assert "YAML error" in problem.message


def test_yaml_tab_indentation_error_is_on_its_line(course):
    text = lesson_text().replace("    title: One", "\ttitle: One")
    path = write(course, "01-first.md", text)
    problem = only_problem(course)
    assert (problem.path, problem.line) == (path, line_of(path, "\ttitle: One"))


def test_missing_front_matter(course):
    path = write(course, "01-first.md", "# Just a heading\n\nNo fields at all.\n")
    assert str(only_problem(course)) == (f"{path}:1: a lesson file must start with front matter: a line `---`, "
                                         "the YAML fields, then another `---` line, then the lesson text")


def test_unclosed_front_matter(course):
    write(course, "01-first.md", "---\nnumber: 1\nslug: first\n\n# Text\n")
    problem = only_problem(course)
    assert problem.line == 1 and "never closed" in problem.message


def test_empty_front_matter_and_front_matter_that_is_not_fields(course):
    write(course, "01-a.md", "---\n---\nText\n")
    write(course, "02-b.md", "---\n- just\n- a list\n---\nText\n")
    _, problems = load_course(course, limits=LIMITS)
    assert [(p.path.name, p.line) for p in problems] == [("01-a.md", 1), ("02-b.md", 2)]
    assert "empty" in problems[0].message and "not a list" in problems[1].message


def test_unknown_key_typo_is_reported_with_a_suggestion(course):
    path = write(course, "01-first.md", lesson_text().replace("title: Lesson 1", "titel: Lesson 1"))
    _, problems = load_course(course, limits=LIMITS)
    messages = {p.message: p.line for p in problems}
    typo = next(m for m in messages if "unknown field" in m)
    assert "`titel`" in typo and "did you mean `title`?" in typo
    assert messages[typo] == line_of(path, "titel:")
    assert any("`title`" in m and "missing" in m for m in messages)  # and the real title is now missing


def test_unknown_key_inside_an_exercise_and_in_links(course):
    text = lesson_text(extra="links:\n  vidoe: https://example.com\n").replace("    submit:", "    sumbit:")
    path = write(course, "01-first.md", text)
    _, problems = load_course(course, limits=LIMITS)
    lines = {p.line: p.message for p in problems}
    assert "did you mean `video`?" in lines[line_of(path, "vidoe:")]
    assert "did you mean `submit`?" in lines[line_of(path, "sumbit:")]
    assert "exercise 1 (first-one)" in lines[line_of(path, "sumbit:")]


def test_missing_required_field(course):
    path = write(course, "01-first.md", lesson_text().replace("summary: A summary.\n", ""))
    problem = only_problem(course)
    assert (problem.path, problem.line) == (path, 2)  # the front matter's first field: the mapping lacks it
    assert problem.message == "`summary`: this required field is missing"


def test_missing_field_of_an_exercise_points_at_the_exercise(course):
    path = write(course, "01-first.md", lesson_text().replace("    brief: Draw something.\n", ""))
    problem = only_problem(course)
    assert problem.line == line_of(path, "- id: first-one")
    assert problem.message == "exercise 1 (first-one) `brief`: this required field is missing"


def test_wrongly_typed_fields(course):
    text = lesson_text().replace("number: 1", "number: one").replace("slug: first", "slug: First Lesson")
    path = write(course, "01-first.md", text.replace("title: Lesson 1", "title: [a, b]"))
    _, problems = load_course(course, limits=LIMITS)
    by_line = {p.line: p.message for p in problems}
    assert by_line[line_of(path, "number:")] == "`number`: must be a whole number (you gave 'one')"
    assert "lowercase letters, digits" in by_line[line_of(path, "slug:")]
    assert by_line[line_of(path, "title:")] == "`title`: must be text"


def test_duplicate_exercise_id_across_two_files(course):
    write(course, "01-first.md", lesson_text(number=1, slug="first"))
    second = write(course, "02-second.md", lesson_text(number=2, slug="second").replace("second-one", "first-one"))
    lessons, problems = load_course(course, limits=LIMITS)
    (problem,) = problems
    assert (problem.path, problem.line) == (second, line_of(second, "- id: first-one"))
    assert problem.message == "exercise id 'first-one' is already used in 01-first.md, line 7"
    assert [lesson.slug for lesson in lessons] == ["first"]  # the later file is the one left out


def test_duplicate_exercise_id_within_one_file(course):
    exercises = lesson_text().split("exercises:\n")[1].split("---\n")[0]
    path = write(course, "01-first.md", lesson_text(exercises=exercises + exercises))
    problem = only_problem(course)
    assert problem.line == 15 == [i for i, line in enumerate(path.read_text().splitlines(), 1)
                                  if "- id: first-one" in line][1]
    assert "already used in this file, line 7" in problem.message


def test_duplicate_lesson_number_and_slug(course):
    write(course, "01-a.md", lesson_text(number=1, slug="a"))
    b = write(course, "01-b.md", lesson_text(number=1, slug="b"))
    c = write(course, "02-c.md", lesson_text(number=2, slug="a").replace("a-one", "c-one"))
    lessons, problems = load_course(course, limits=LIMITS)
    assert [str(p) for p in problems] == [
        f"{b}:2: number 1 is already used in 01-a.md, line 2",
        f"{c}:3: slug 'a' is already used in 01-a.md, line 3",
    ]
    assert [lesson.slug for lesson in lessons] == ["a"]


def test_bad_technique(course):
    path = write(course, "01-first.md", lesson_text().replace("technique: cppn", "technique: cppm"))
    problem = only_problem(course)
    assert problem.line == line_of(path, "technique: cppm")
    assert "unknown technique 'cppm'; did you mean `cppn`?" in problem.message


def test_preset_above_the_step_limit_is_refused_by_the_parser(course):
    path = write(course, "01-first.md", lesson_text().replace("      size: 64", "      size: 64\n      steps: 5000"))
    problem = only_problem(course)
    assert problem.line == line_of(path, "steps: 5000")
    assert "steps must be at most 1000 on this server (you gave 5000)" in problem.message


def test_preset_out_of_range_and_bad_choice(course):
    text = lesson_text().replace("      size: 64", "      size: 64\n      layers: 99\n      colour: purple")
    path = write(course, "01-first.md", text)
    problem = only_problem(course)  # the parser stops at the first bad option: layers
    assert problem.line == line_of(path, "layers: 99")
    assert "layers must be between 1 and 16" in problem.message


def test_unknown_preset_option(course):
    path = write(course, "01-first.md", lesson_text().replace("      size: 64", "      size: 64\n      zooom: 2"))
    problem = only_problem(course)
    assert problem.line == line_of(path, "zooom: 2")
    assert "cppn has no option `zooom`; did you mean `zoom`?" in problem.message


def test_preset_that_is_not_a_single_value(course):
    path = write(course, "01-first.md", lesson_text().replace("      size: 64", "      size: [64, 64]"))
    problem = only_problem(course)
    assert problem.line == line_of(path, "size: [64, 64]") and "single value" in problem.message


def test_preset_missing_a_required_option(course):
    exercises = """\
  - id: paint
    title: Paint
    brief: Paint it.
    technique: style
    preset:
      style: images/dot.png
    submit: The picture.
"""
    path = write(course, "01-first.md", lesson_text(exercises=exercises))
    problem = only_problem(course)
    assert problem.line == line_of(path, "preset:")
    assert "needs --content" in problem.message


def test_image_path_escaping_the_folder(course):
    Image.new("RGB", (8, 8)).save(course.parent / "x.png")  # it exists, but outside the course
    exercises = """\
  - id: grow
    title: Grow
    brief: Grow it.
    technique: nca
    preset:
      target: ../x.png
    submit: The picture.
  - id: grow-abs
    title: Grow
    brief: Grow it.
    technique: nca
    preset:
      target: {absolute}
    submit: The picture.
""".format(absolute=course.parent / "x.png")
    path = write(course, "01-first.md", lesson_text(exercises=exercises))
    _, problems = load_course(course, limits=LIMITS)
    assert [p.line for p in problems] == [line_of(path, "../x.png"), line_of(path, "target: /")]
    assert all("must be inside the course folder" in p.message for p in problems)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_image_symlink_escaping_the_folder(course):
    Image.new("RGB", (8, 8)).save(course.parent / "x.png")
    (course / "images" / "link.png").symlink_to(course.parent / "x.png")
    text = lesson_text().replace("      size: 64", "      size: 64\n      target: images/link.png")
    path = write(course, "01-first.md", text)
    problem = only_problem(course)
    assert problem.line == line_of(path, "target: images/link.png")
    assert "leads outside the course folder" in problem.message


def test_image_that_is_not_an_image_or_is_missing(course):
    (course / "images" / "notes.png").write_text("this is text, not a picture")
    text = lesson_text().replace("      size: 64", "      size: 64\n      target: images/notes.png")
    text = text.replace("  - id: first-one", "  - id: first-two\n    title: T\n    brief: B\n    technique: nca\n"
                                              "    preset: {target: images/nowhere.png}\n    submit: S\n"
                                              "  - id: first-one")
    path = write(course, "01-first.md", text)
    _, problems = load_course(course, limits=LIMITS)
    assert [p.line for p in problems] == [line_of(path, "nowhere.png"), line_of(path, "notes.png")]
    assert "no image file 'images/nowhere.png'" in problems[0].message
    assert "not an image Easel can read" in problems[1].message


def test_bad_link_urls(course):
    extra = "links:\n  video: ftp://example.com/v\n  notebook: not a url\n  reading: https://\n"
    path = write(course, "01-first.md", lesson_text(extra=extra))
    _, problems = load_course(course, limits=LIMITS)
    assert [p.line for p in problems] == [line_of(path, "video:"), line_of(path, "notebook:"),
                                          line_of(path, "reading:")]
    assert "must be a full http:// or https:// address (you gave 'ftp://example.com/v')" in problems[0].message
    assert "spaces" in problems[1].message


def test_empty_lesson_text(course):
    write(course, "01-first.md", lesson_text(body="\n   \n"))
    problem = only_problem(course)
    assert problem.line == 15 and "lesson text" in problem.message and "empty" in problem.message


def test_several_problems_in_one_file_are_all_reported(course):
    text = (lesson_text(extra="links:\n  video: nope\n")
            .replace("number: 1", "number: 0")
            .replace("title: One", "titel: One")
            .replace("technique: cppn", "technique: paint")
            .replace("summary: A summary.", "summary: ''"))
    path = write(course, "01-first.md", text)
    lessons, problems = load_course(course, limits=LIMITS)
    assert lessons == []
    assert all(p.path == path for p in problems)
    lines = [p.line for p in problems]
    assert lines == sorted(lines)
    for fragment in ("number: 0", "summary: ''", "video: nope", "titel: One", "technique: paint"):
        assert line_of(path, fragment) in lines, fragment


def test_problems_in_several_files_are_all_reported(course):
    write(course, "01-a.md", lesson_text(number=1, slug="a").replace("title: Lesson 1", "titel: x"))
    write(course, "02-b.md", "no front matter\n")
    write(course, "03-c.md", lesson_text(number=3, slug="c"))
    lessons, problems = load_course(course, limits=LIMITS)
    assert {p.path.name for p in problems} == {"01-a.md", "02-b.md"}
    assert [lesson.slug for lesson in lessons] == ["c"]


def test_duplicate_keys_and_aliases_are_refused(course):
    text = lesson_text().replace("title: Lesson 1", "title: Lesson 1\ntitle: Again")
    path = write(course, "01-first.md", text)
    problem = only_problem(course)
    assert problem.line == line_of(path, "title: Again") and "given twice (first on line 4)" in problem.message
    write(course, "01-first.md", lesson_text(extra="links: &l {video: https://a.example}\nmore: *l\n"))
    problem = only_problem(course)
    assert problem.line == 7 and "aliases" in problem.message


def test_unsafe_yaml_tags_are_refused(course):
    write(course, "01-first.md", lesson_text(extra="hack: !!python/object/apply:os.system ['echo hi']\n"))
    problem = only_problem(course)
    assert problem.line == 6 and "YAML error" in problem.message


def test_oversized_and_non_utf8_files(course):
    big = write(course, "01-big.md", lesson_text(body="x" * (300 * 1024)))
    (course / "02-latin.md").write_bytes(lesson_text(number=2, slug="latin").encode() + b"caf\xe9\n")
    _, problems = load_course(course, limits=LIMITS)
    assert [(p.path.name, p.line) for p in problems] == [("01-big.md", 1), ("02-latin.md", 19)]  # 3 text lines
    assert "at most 256 KiB" in problems[0].message and big.stat().st_size > 256 * 1024
    assert "UTF-8" in problems[1].message


def test_missing_or_empty_folder(tmp_path):
    _, problems = load_course(tmp_path / "nowhere", limits=LIMITS)
    assert problems[0].line == 0 and "no such course folder" in problems[0].message
    _, problems = load_course(tmp_path, limits=LIMITS)
    assert "no lesson files" in problems[0].message


def test_problem_text_is_path_line_message():
    assert str(Problem(Path("course/01-a.md"), 12, "something is wrong")) == "course/01-a.md:12: something is wrong"


def test_the_server_limits_apply(course):
    write(course, "01-first.md", lesson_text().replace("size: 64", "size: 512"))
    assert load_course(course, limits=LIMITS)[1] == []
    _, problems = load_course(course, limits=Limits(max_steps=1000, max_size=256, clamp=False))
    assert "size must be at most 256 on this server" in problems[0].message


def test_preset_values_are_stored_as_the_parser_reads_them(course):
    exercises = """\
  - id: spectrum
    title: Spectrum
    brief: Draw it.
    technique: imagine
    preset:
      prompt: '  a lighthouse  '
      param: Fourier
      lr: "0.1"
      steps: 20.0
      seed: "42"
    submit: The picture.
"""
    write(course, "01-first.md", lesson_text(exercises=exercises))
    lessons, problems = load_course(course, limits=LIMITS)
    assert problems == []
    preset = lessons[0].exercises[0].preset
    assert preset == {"prompt": "a lighthouse", "param": "fourier", "lr": 0.1, "steps": 20, "seed": 42}
    assert type(preset["steps"]) is int and type(preset["lr"]) is float
