"""All of Easel's settings, read once from the environment and `.env`.

Every setting here is listed, with its default and meaning, in `.env.example`.
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DISCORD_API_BASE = "https://discord.com/api/v10"
SHIPPED_COURSE = Path(__file__).resolve().parent.parent / "course"
_DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Discord
    discord_token: SecretStr | None = None
    discord_guild_id: int | None = None
    discord_api_base: str = DISCORD_API_BASE
    discord_gateway_url: str | None = None

    # Storage
    data_dir: Path = Path("data")
    database_url: str | None = None

    # Hardware and logging
    device: str = "auto"
    worker_name: str | None = None  # how /about names this machine's worker (default: the host name)
    worker_lease_seconds: float = Field(default=30.0, ge=1.0, le=600.0)
    batch_jobs: int = Field(default=0, ge=0, le=64)  # 0: 8 on a GPU, 1 on the CPU
    batch_memory_mb: int = Field(default=0, ge=0)  # 0: 85% of the GPU memory free when a batch starts
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Models
    clip_model: str = "ViT-B-32"
    clip_pretrained: str = "laion2b_s34b_b79k"
    vgg_weights: str = "torchvision"

    # Jobs and the queue
    max_queued_per_user: int = Field(default=3, ge=1, le=100)
    max_steps: int = Field(default=1000, ge=1, le=100_000)
    max_size: int = Field(default=512, ge=32, le=4096)
    clamp_out_of_range: bool = True
    progress_every: int = Field(default=10, ge=1)
    keyframes: int = Field(default=4, ge=0, le=20)
    status_edit_seconds: float = Field(default=3.0, ge=0.0)
    max_upload_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(default=16_000_000, ge=4096)

    # Training generators (/train)
    max_train_steps: int = Field(default=5000, ge=1, le=1_000_000)  # the most steps one training may take
    max_train_images: int = Field(default=1000, ge=4, le=100_000)  # the largest data set
    max_gan_models: int = Field(default=5, ge=1, le=1000)  # models a guild may keep
    max_train_zip_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)  # a zip of training images
    max_train_size: int = Field(default=0, ge=0, le=128)  # 0: 128 px on a GPU, 64 on the CPU
    train_chunk_steps: int = Field(default=200, ge=1, le=100_000)  # steps in one turn on the GPU
    gan_width: int = Field(default=64, ge=4, le=256)  # channels of the networks' widest block

    # Moderation
    max_blocked_terms_per_guild: int = Field(default=50, ge=1, le=1000)
    moderation_budget_seconds: float = Field(default=0.25, gt=0.0, le=10.0)

    # The course
    course_dir: Path = SHIPPED_COURSE
    max_submissions_per_exercise: int = Field(default=10, ge=1, le=1000)

    # Challenges
    max_challenge_entries: int = Field(default=100, ge=2, le=200)
    max_active_challenges: int = Field(default=10, ge=1, le=100)

    # Retention
    keep_results_days: int = Field(default=30, ge=0)

    @field_validator("device")
    @classmethod
    def _check_device(cls, value: str) -> str:
        value = value.strip().lower()
        if not _DEVICE_PATTERN.match(value):
            raise ValueError("must be auto, cpu, mps, cuda or cuda:N (for example cuda:1)")
        return value

    @field_validator("course_dir", mode="before")
    @classmethod
    def _empty_course_dir_is_the_shipped_course(cls, value: object) -> object:
        return SHIPPED_COURSE if isinstance(value, str) and not value.strip() else value

    @field_validator("discord_token")
    @classmethod
    def _empty_token_is_missing(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            return None
        return value

    @property
    def shared_database(self) -> bool:
        """PostgreSQL: workers on other machines may run the jobs, so their input images go in the database."""
        return self.resolved_database_url.startswith("postgresql")

    @cached_property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file inside DATA_DIR."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'easel.db'}"
