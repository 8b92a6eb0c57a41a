"""A person's finished picture, as the course and the challenges take it in: an upload or one of their own jobs.

Both check the same things (an upload is an image within the limits; a job is the person's own, finished,
with its image still stored; its texts pass the guild's moderation) and store the picture the same way:
a WebP of at most STORED_SIDE pixels, named by its row's id, written aside first so no one reads half a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
from collections.abc import AsyncIterator
from pathlib import Path

from PIL import Image
from sqlalchemy.ext.asyncio import AsyncSession

from bot.art.imagefiles import ImageRejected, load_image_bytes, load_image_file
from bot.errors import UserFacingError
from bot.jobs.service import JobService
from bot.jobs.spec import JobSpec
from bot.moderation import ModerationService
from bot.settings import Settings
from models import Job, JobStatus, Member

STORED_SIDE = 1024  # stored pictures are at most this many pixels on their longest side
STORED_QUALITY = 85  # WebP quality: small files that still look like the original
DISPLAY_NAME_LENGTH = 100


class ArtworkIntake:
    def __init__(self, settings: Settings, jobs: JobService, moderation: ModerationService) -> None:
        self.settings = settings
        self.jobs = jobs
        self.moderation = moderation

    async def moderate(self, guild_id: int, user_id: int, texts: list[str]) -> None:
        """Refuses texts the guild's hosts blocked, and logs the refusal for them."""
        matched = await self.moderation.check_texts(guild_id, texts)
        if matched is not None:
            await self.moderation.log_refusal(guild_id, user_id, 0, " · ".join(texts), matched)
            raise UserFacingError("This server's hosts do not allow that text, so nothing was saved. "
                                  "Please change it and try again.")

    async def checked_upload(self, data: bytes) -> Image.Image:
        try:
            return await asyncio.to_thread(load_image_bytes, data, max_bytes=self.settings.max_upload_bytes,
                                           max_pixels=self.settings.max_image_pixels)
        except ImageRejected as error:
            raise UserFacingError(str(error)) from None

    async def own_finished_job(self, job_id: int, user_id: int, guild_id: int) -> tuple[Image.Image, Job]:
        """The picture of one of the person's finished jobs, after moderating the job's texts."""
        job = await self.jobs.repository.get(job_id)
        if job is None or job.user_id != user_id:
            raise UserFacingError(f"Job #{job_id} is not one of yours. /queue lists your jobs; use one of them, "
                                  "or attach an image.")
        if job.status != JobStatus.DONE:
            raise UserFacingError(f"Job #{job_id} has not finished ({job.status}). Use it once it is done.")
        await self.moderate(guild_id, user_id, JobSpec.from_dict(job.spec).texts())
        try:
            if job.result_path is None:
                raise ImageRejected("pruned")
            picture = await asyncio.to_thread(load_image_file, job.result_path)
        except ImageRejected:
            raise UserFacingError(f"Job #{job_id}'s image is no longer stored here; run it again, "
                                  "or attach the image you saved.") from None
        return picture, job


async def remember_member(session: AsyncSession, guild_id: int, user_id: int, display_name: str) -> None:
    """The name galleries and results show under a person's work (updated whenever they hand one in)."""
    member = await session.get(Member, (guild_id, user_id))
    if member is None:
        session.add(Member(guild_id=guild_id, user_id=user_id, display_name=display_name[:DISPLAY_NAME_LENGTH]))
    else:
        member.display_name = display_name[:DISPLAY_NAME_LENGTH]


class PictureWrites:
    """Pictures written inside a database transaction, each named by its row's id."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.written: list[Path] = []

    async def write(self, picture: Image.Image, row_id: int) -> str:
        path = self.folder / f"{row_id}.webp"
        self.written.append(path)
        await asyncio.to_thread(write_compact, picture, path)
        return str(path)


@contextlib.asynccontextmanager
async def picture_writes(folder: Path) -> AsyncIterator[PictureWrites]:
    """Open it around a transaction that writes pictures: if the transaction fails, they are removed again."""
    writes = PictureWrites(folder)
    try:
        yield writes
    except BaseException:
        for path in writes.written:
            path.unlink(missing_ok=True)
        raise


def write_compact(picture: Image.Image, path: Path) -> None:
    """Writes a picture as a WebP no larger than STORED_SIDE, aside first so no one reads half a file."""
    picture = picture.copy()
    picture.thumbnail((STORED_SIDE, STORED_SIDE))
    buffer = io.BytesIO()
    picture.save(buffer, format="WEBP", quality=STORED_QUALITY)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(".part")
    part.write_bytes(buffer.getvalue())
    os.replace(part, path)


def remove_stored(path: Path, folder: Path) -> None:
    """Removes a stored picture, only if it lies directly in its folder (whatever path a row holds)."""
    if path.parent.resolve() == folder.resolve() and not path.is_symlink():
        path.unlink(missing_ok=True)
