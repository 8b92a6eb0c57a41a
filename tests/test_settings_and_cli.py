import asyncio
import logging
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from bot import db
from bot.cli import main
from bot.jobs.repository import JobRepository
from bot.log import RedactSecrets
from bot.settings import Settings
from models import Job, JobStatus
from models.base import utcnow

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean_env = {key: value for key, value in os.environ.items() if key not in {"DISCORD_TOKEN", "DEVICE"}}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], capture_output=True, text=True, cwd=cwd,
        env={**clean_env, "PYTHONPATH": str(PROJECT_ROOT), **env}, timeout=120,
    )


def test_run_without_a_token_prints_one_line_and_exits_2(tmp_path):
    result = run_cli("run", env={"DATA_DIR": str(tmp_path)}, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "DISCORD_TOKEN" in lines[0]


def test_an_invalid_setting_names_the_variable_and_what_it_accepts(tmp_path):
    result = run_cli("run", env={"DEVICE": "gpu", "DISCORD_TOKEN": "x"}, cwd=tmp_path)
    assert result.returncode == 2
    assert "DEVICE" in result.stderr and "cuda:N" in result.stderr


def test_the_token_is_secret_in_settings_repr(monkeypatch):
    monkeypatch.setenv("DISCORD_TOKEN", "very-secret-token")
    settings = Settings()
    assert "very-secret-token" not in repr(settings)
    assert settings.discord_token.get_secret_value() == "very-secret-token"


def test_default_database_lives_in_the_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "d"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert Settings().resolved_database_url == f"sqlite+aiosqlite:///{tmp_path / 'd' / 'easel.db'}"


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:1", "CUDA:0"])
def test_device_accepts_the_documented_values(monkeypatch, device):
    monkeypatch.setenv("DEVICE", device)
    assert Settings().device == device.lower()


def test_db_upgrade_current_and_downgrade_from_the_command_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["db", "upgrade"]) == 0
    assert f"revision {db.head_revision()}" in capsys.readouterr().out
    assert (tmp_path / "easel.db").exists()
    assert main(["db", "downgrade", "base"]) == 0
    assert "base (empty)" in capsys.readouterr().out


def test_every_subcommand_has_help(tmp_path):
    for args in (["--help"], ["run", "--help"], ["db", "--help"], ["sync", "--help"]):
        result = run_cli(*args, env={}, cwd=tmp_path)
        assert result.returncode == 0 and "usage:" in result.stdout


def test_help_and_the_commands_that_need_no_model_load_no_torch_nor_open_clip(tmp_path):
    """`bot --help` answers in a moment: the model code loads only for commands that run jobs."""
    probe = ("import sys\nfrom bot.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
             "print(sorted(name for name in ('torch', 'open_clip', 'discord') if name in sys.modules))")
    for args in (["--help"], ["render", "--help"], ["worker", "--help"], ["db", "current"]):
        result = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, cwd=tmp_path,
                                env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "DATA_DIR": str(tmp_path)})
        assert result.stdout.strip().splitlines()[-1] == "[]", (args, result.stdout, result.stderr)


def test_secrets_are_redacted_from_log_records():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "calling %s", ("https://a/b?token=s3cr3t",), None)
    RedactSecrets(["s3cr3t"]).filter(record)
    assert "s3cr3t" not in record.getMessage() and "[redacted]" in record.getMessage()


def test_env_example_lists_every_setting_with_its_default():
    lines = (PROJECT_ROOT / ".env.example").read_text().splitlines()
    listed = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    assert set(listed) == {name.upper() for name in Settings.model_fields}
    defaults = Settings(_env_file=None)
    for name, field in Settings.model_fields.items():
        if listed[name.upper()] and field.default is not None:
            assert listed[name.upper()].lower() == str(getattr(defaults, name)).lower(), name


@pytest.mark.parametrize("args", [["data", "--help"], ["data", "prune", "--help"], ["data", "size", "--help"]])
def test_the_data_commands_have_help(args, capsys):
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 0 and "usage:" in capsys.readouterr().out


async def add_old_finished_job(database_url: str) -> int:
    engine = db.create_engine(database_url)
    try:
        job = await JobRepository(db.create_session_factory(engine)).add(Job(
            guild_id=10, channel_id=20, user_id=1, technique="cppn", title="t", seed=1, total_steps=10,
            spec={"technique": "cppn", "seed": 1, "config": {}}, status=JobStatus.DONE,
            finished_at=utcnow() - timedelta(days=8),
        ))
    finally:
        await engine.dispose()
    return job.id


def test_data_prune_lists_each_file_it_removed_and_the_total(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("KEEP_RESULTS_DAYS", "7")
    assert main(["db", "upgrade"]) == 0
    job_id = asyncio.run(add_old_finished_job(Settings().resolved_database_url))
    result = tmp_path / "results" / f"job-{job_id}"
    result.mkdir(parents=True)
    (result / "final.png").write_bytes(b"r" * 1500)
    orphan = tmp_path / "uploads" / "orphan.png"
    orphan.parent.mkdir()
    orphan.write_bytes(b"u" * 2500)
    two_hours_ago = time.time() - 7200
    os.utime(orphan, (two_hours_ago, two_hours_ago))
    capsys.readouterr()

    assert main(["data", "prune"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(str(result) in line and "1.5 kB" in line for line in lines)
    assert any(str(orphan) in line and "2.5 kB" in line for line in lines)
    assert lines[-1] == "Removed 1 result folder (1.5 kB) and 1 upload (2.5 kB): 4.0 kB freed"
    assert not result.exists() and not orphan.exists()

    assert main(["data", "size"]) == 0
    assert "uploads" in capsys.readouterr().out


def test_data_prune_refuses_a_database_that_was_never_upgraded(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["data", "prune"]) == 1
    assert "python -m bot db upgrade" in capsys.readouterr().err
