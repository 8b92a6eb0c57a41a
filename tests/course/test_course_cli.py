"""`python -m bot course check`: every problem as path:line: message, a summary, exit 0 or 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from tests.course.test_files import SHIPPED_COURSE, lesson_text

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_settings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no .env from the repository
    for name in ("COURSE_DIR", "MAX_STEPS", "MAX_SIZE"):
        monkeypatch.delenv(name, raising=False)


def make_course(folder: Path, *texts: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for number, text in enumerate(texts, 1):
        (folder / f"{number:02d}-lesson.md").write_text(text)
    return folder


def test_a_good_course_exits_0_with_a_summary(tmp_path, capsys):
    folder = make_course(tmp_path / "good", lesson_text(1, "one"), lesson_text(2, "two"))
    assert main(["course", "check", "--dir", str(folder)]) == 0
    assert capsys.readouterr().out == "2 lessons, 2 exercises, 0 problems\n"


def test_a_bad_course_exits_1_with_file_and_line_for_every_problem(tmp_path, capsys):
    broken = lesson_text(2, "two").replace("title: Lesson 2", "titel: Lesson 2").replace("size: 64", "size: 600")
    folder = make_course(tmp_path / "bad", lesson_text(1, "one"), broken, "no front matter\n")
    assert main(["course", "check", "--dir", str(folder)]) == 1
    lines = capsys.readouterr().out.splitlines()
    second, third = folder / "02-lesson.md", folder / "03-lesson.md"
    assert len(lines) == 5 and lines[-1] == "1 lessons, 1 exercises, 4 problems"
    expected = [  # by file, then by line
        f"{second}:2: `title`: this required field is missing",
        f"{second}:4: `titel`: unknown field; did you mean `title`?",
        f"{second}:12: exercise 1 (two-one): the preset is refused: size must be at most 512 on this server",
        f"{third}:1: a lesson file must start with front matter",
    ]
    for line, start in zip(lines, expected, strict=False):
        assert line.startswith(start), (line, start)


def test_presets_are_held_to_the_bots_limits(tmp_path, monkeypatch, capsys):
    folder = make_course(tmp_path / "course", lesson_text(1, "one").replace("size: 64", "size: 300"))
    assert main(["course", "check", "--dir", str(folder)]) == 0
    monkeypatch.setenv("MAX_SIZE", "256")
    assert main(["course", "check", "--dir", str(folder)]) == 1
    assert "size must be at most 256 on this server (you gave 300)" in capsys.readouterr().out


def test_the_default_folder_comes_from_the_settings(tmp_path, monkeypatch, capsys):
    make_course(tmp_path / "course", lesson_text(1, "one"))  # ./course: the default without COURSE_DIR
    monkeypatch.setenv("COURSE_DIR", str(tmp_path / "course"))
    assert main(["course", "check"]) == 0
    assert capsys.readouterr().out.endswith("1 lessons, 1 exercises, 0 problems\n")


def test_a_missing_folder_is_a_problem(tmp_path, capsys):
    assert main(["course", "check", "--dir", str(tmp_path / "nowhere")]) == 1
    assert "no such course folder" in capsys.readouterr().out


def test_the_course_command_has_help(capsys):
    for argv in (["course", "--help"], ["course", "check", "--help"]):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 0 and "usage:" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exited:
        main(["course"])  # an action is required
    assert exited.value.code == 2


def test_the_shipped_course_checks_clean_from_the_shell(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(PROJECT_ROOT)}
    env.pop("COURSE_DIR", None)
    result = subprocess.run([sys.executable, "-m", "bot", "course", "check", "--dir", str(SHIPPED_COURSE)],
                            capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    lessons, exercises, problems = (int(part.split()[0]) for part in result.stdout.strip().split(", "))
    assert lessons >= 6 and exercises >= 12 and problems == 0


def test_sync_loads_the_course_once_and_refuses_a_broken_one(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    folder = make_course(tmp_path / "course", lesson_text(1, "one"), lesson_text(2, "two"))
    assert main(["course", "sync", "--dir", str(folder)]) == 0
    assert main(["course", "sync", "--dir", str(folder)]) == 0
    first, second = capsys.readouterr().out.splitlines()
    assert "2 added" in first and "2 unchanged" in second

    (folder / "02-lesson.md").write_text("---\nnumber: [\n---\n")
    (folder / "01-lesson.md").unlink()
    assert main(["course", "sync", "--dir", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "02-lesson.md:" in out and "nothing was loaded" in out
    assert main(["course", "sync", "--dir", str(make_course(tmp_path / "one", lesson_text(1, "one")))]) == 0
    assert "1 hidden" in capsys.readouterr().out  # lesson two's file is gone now: hidden, not deleted
