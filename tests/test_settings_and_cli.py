import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot import db
from bot.cli import main
from bot.log import RedactSecrets
from bot.settings import Settings

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
