"""A throwaway PostgreSQL cluster for the tests.

It is made once per test session in a temporary folder, listens on loopback only, and runs as an
unprivileged user (PostgreSQL refuses to run as root). Each test gets a database of its own. Where
PostgreSQL is not installed, `PostgresMissing` says why, and the tests that need it are skipped.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

# The tests of a module or test marked with this that use the database run once on SQLite and once on
# PostgreSQL: `pytestmark = both_engines` (see pytest_generate_tests in tests/conftest.py).
both_engines = pytest.mark.both_engines
ENGINES = ("sqlite", "postgresql")
UNPRIVILEGED_USERS = ("postgres", "nobody")  # who runs the cluster when the tests run as root
SUPERUSER = "easel"


class PostgresMissing(RuntimeError):
    """PostgreSQL cannot be started here; the message says why (it becomes the skip reason)."""


def postgres_bin_dir() -> Path:
    """The folder holding initdb and pg_ctl: on the PATH, or Debian's /usr/lib/postgresql/<version>/bin."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).parent
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda path: int(path.split("/")[4]))
    if debian:
        return Path(debian[-1]).parent
    raise PostgresMissing("PostgreSQL is not installed (no initdb); `.ci/install-postgresql` installs Debian's")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ThrowawayCluster:
    def __init__(self) -> None:
        self.bin_dir = postgres_bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="easel-pg-"))
        self.data_dir = self.root / "data"
        self.port = _free_port()
        self.run_as = self._unprivileged_user()
        self._databases = 0

    def _unprivileged_user(self) -> pwd.struct_passwd | None:
        """None when the tests already run as an ordinary user."""
        if os.geteuid() != 0:
            return None
        for name in UNPRIVILEGED_USERS:
            try:
                return pwd.getpwnam(name)
            except KeyError:
                continue
        raise PostgresMissing("running as root and no unprivileged user (postgres, nobody) to run PostgreSQL as")

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", self.run_as.pw_name, "--"] if self.run_as else []
        result = subprocess.run([*prefix, *command], capture_output=True, text=True, cwd=self.root, check=False)
        if result.returncode != 0:
            raise PostgresMissing(f"{Path(command[0]).name} failed: {(result.stderr or result.stdout).strip()[-500:]}")

    def start(self) -> None:
        self.root.chmod(0o755)
        if self.run_as:
            os.chown(self.root, self.run_as.pw_uid, self.run_as.pw_gid)
        self._run(str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER, "-A", "trust",
                  "-E", "UTF8", "--no-sync")
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.root / "log"),
                  "-o", options, "-w", "start")

    def stop(self) -> None:
        with contextlib.suppress(PostgresMissing):  # never started
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        self._databases += 1
        name = f"easel_{self._databases}"
        psql = shutil.which("psql") or str(self.bin_dir / "psql")
        subprocess.run([psql, "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, "-d", "postgres", "-q",
                        "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True)
        return self.url(name)

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"
