"""Logging to the console and to a rotating file, with secrets redacted."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class RedactSecrets(logging.Filter):
    """Replaces any secret that slips into a log record (a token in a URL, say) with `[redacted]`."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [secret for secret in secrets if secret]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(secret in message for secret in self.secrets):
            for secret in self.secrets:
                message = message.replace(secret, "[redacted]")
            record.msg, record.args = message, None
        return True


def setup_logging(level: str, log_dir: Path, secrets: list[str]) -> None:
    log_dir.mkdir(parents=True, exist_ok=True)
    formatter = logging.Formatter(LOG_FORMAT)
    redact = RedactSecrets(secrets)

    console = logging.StreamHandler()
    file = logging.handlers.RotatingFileHandler(
        log_dir / "easel.log", maxBytes=5 * 1024 * 1024, backupCount=5, encoding="utf-8"
    )
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_easel", False):
            root.removeHandler(handler)
    for handler in (console, file):
        handler.setFormatter(formatter)
        handler.addFilter(redact)
        handler._easel = True  # type: ignore[attr-defined]  # lets a second call replace, not add
        root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("discord.gateway").setLevel(max(logging.getLevelName(level), logging.INFO))
