"""A guild's own generators: the data set a host trains one on, its models, and the jobs that use them.

Plain asyncio; it knows Discord only as ids. A model belongs to its guild: every call takes the guild
and finds models only there. The data set is gathered once, when training is asked for, and stored
in the model's folder (`DATA_DIR/gan/model-<id>/`), where the worker also keeps its checkpoint; the
training itself is an ordinary job that runs chunk by chunk (bot/art/techniques/generator.py).
"""

from __future__ import annotations

import asyncio
import io
import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import torch
from PIL import Image
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.art.gan import dataset_pixels, square_rgb
from bot.art.imagefiles import ImageRejected, load_image_bytes, load_image_file
from bot.art.models import choose_device
from bot.art.techniques.generator import DATASET_FILE, TrainConfig
from bot.errors import UserFacingError
from bot.jobs.service import JobRequest, JobService, Receipt
from bot.jobs.spec import JobSpec
from bot.moderation import ModerationService
from bot.settings import Settings
from models import ChallengeEntry, GanModel, GanStatus, Job, JobStatus, Submission
from models.challenge import Challenge

NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
MIN_IMAGES = 4
SKIPPED_IN_ZIPS = ("__MACOSX/", ".")  # the Finder's and other hidden files a zip often carries
STATUS_OF_JOB = {JobStatus.DONE: GanStatus.READY, JobStatus.CANCELLED: GanStatus.STOPPED,
                 JobStatus.FAILED: GanStatus.FAILED}


@dataclass(frozen=True)
class DataSource:
    """Where the training images come from: exactly one of a challenge, an exercise or a zip's bytes."""

    challenge_id: int | None = None
    exercise_id: str | None = None
    zip_data: bytes | None = None


@dataclass(frozen=True)
class TrainRequest:
    guild_id: int
    host_id: int
    channel_id: int
    name: str
    source: DataSource
    image_size: int = 64
    mirror: bool = True
    steps: int | None = None  # None: the bot's limit


@dataclass(frozen=True)
class ModelInfo:
    model: GanModel
    status: GanStatus
    steps_done: int


class GeneratorService:
    def __init__(self, settings: Settings, sessions: async_sessionmaker[AsyncSession], jobs: JobService,
                 moderation: ModerationService, *, max_image_size: int, has_worker: bool = True) -> None:
        self.settings = settings
        self.sessions = sessions
        self.jobs = jobs
        self.moderation = moderation
        self.max_image_size = max_image_size  # 128 where the worker has a GPU, 64 on the CPU
        self.has_worker = has_worker  # models live on the bot's disk: only its own worker trains and samples them
        self.workspace = settings.data_dir / "gan"
        self._training = asyncio.Lock()  # one request at a time checks the caps and takes its name

    def _check_worker(self) -> None:
        if not self.has_worker:
            raise UserFacingError("This bot runs its jobs on other machines, which cannot reach its models: "
                                  "training needs the bot's own worker (`python -m bot run` without --no-worker).")

    def folder(self, model_id: int) -> Path:
        return self.workspace / f"model-{model_id}"

    async def train(self, request: TrainRequest) -> tuple[GanModel, Receipt]:
        """Checks the request, gathers and stores the data set, and queues the first chunk of training."""
        self._check_worker()
        name = request.name.strip().lower()
        if not NAME.fullmatch(name):
            raise UserFacingError("A model's name is 1 to 40 lowercase letters, digits and dashes, "
                                  "starting with a letter or digit, e.g. `marine-gan`.")
        if request.image_size not in (32, 64, 128) or request.image_size > self.max_image_size:
            sizes = ", ".join(str(size) for size in (32, 64, 128) if size <= self.max_image_size)
            raise UserFacingError(f"This bot trains at {sizes} pixels; choose one of those.")
        steps = request.steps or self.settings.max_train_steps
        if not 1 <= steps <= self.settings.max_train_steps:
            raise UserFacingError(f"Training takes 1 to {self.settings.max_train_steps} steps on this bot.")
        if await self.moderation.check_texts(request.guild_id, [name]) is not None:
            raise UserFacingError("This server's hosts do not allow that name. Please choose another.")
        async with self._training:
            await self._check_room(request.guild_id, name)
            images, source = await self._gather(request)
            model = await self._create(request, name, steps, len(images), source)
            try:
                await asyncio.to_thread(self._store_dataset, model.id, images, request.image_size)
                spec = JobSpec("train", train_config(model, self.settings), seed=model.id)
                receipt = await self.jobs.submit_prepared(JobRequest(
                    technique="train", user_id=request.host_id, channel_id=request.channel_id,
                    guild_id=request.guild_id), spec, title=f"training {name}")  # no host lane: chunks take turns
            except BaseException:
                await self._forget(model)
                raise
        async with self.sessions.begin() as session:
            model = await session.get_one(GanModel, model.id)
            model.job_id = receipt.job.id
            model.bytes_used = await asyncio.to_thread(folder_bytes, self.folder(model.id))
        return model, receipt

    async def _check_room(self, guild_id: int, name: str) -> None:
        async with self.sessions() as session:
            count = await session.scalar(select(func.count()).where(GanModel.guild_id == guild_id))
            taken = await session.scalar(select(GanModel.id).where(GanModel.guild_id == guild_id,
                                                                   GanModel.name == name))
        if taken is not None:
            raise UserFacingError(f"This server already has a model called `{name}`. Choose another name, "
                                  "or remove that one with /remove-model.")
        if count >= self.settings.max_gan_models:
            raise UserFacingError(f"This server keeps at most {self.settings.max_gan_models} models. "
                                  "Remove one with /remove-model first.")

    async def _gather(self, request: TrainRequest) -> tuple[list[Image.Image], str]:
        source = request.source
        given = [value for value in (source.challenge_id, source.exercise_id, source.zip_data) if value is not None]
        if len(given) != 1:
            raise UserFacingError("Train on one thing: a challenge's entries, an exercise's submissions, "
                                  "or a zip of images you attach.")
        if source.zip_data is not None:
            images = await asyncio.to_thread(self._read_zip, source.zip_data, request.image_size)
            description = "an uploaded zip"
        else:
            paths, description = await self._stored_images(request.guild_id, source)
            images = await asyncio.to_thread(lambda: [square_rgb(load_image_file(path), request.image_size)
                                                      for path in paths if Path(path).exists()])
        if len(images) < MIN_IMAGES:
            raise UserFacingError(f"That gives {len(images)} images; a model needs at least {MIN_IMAGES}.")
        if len(images) > self.settings.max_train_images:
            raise UserFacingError(f"That gives {len(images)} images; this bot trains on at most "
                                  f"{self.settings.max_train_images}.")
        return images, description

    async def _stored_images(self, guild_id: int, source: DataSource) -> tuple[list[str], str]:
        """The stored images of this guild's challenge entries or exercise submissions (the latest of each)."""
        async with self.sessions() as session:
            if source.challenge_id is not None:
                challenge = await session.get(Challenge, source.challenge_id)
                if challenge is None or challenge.guild_id != guild_id:
                    raise UserFacingError(f"This server has no challenge #{source.challenge_id}.")
                paths = await session.scalars(select(ChallengeEntry.image_path).where(
                    ChallengeEntry.challenge_id == challenge.id, ChallengeEntry.image_path.is_not(None)))
                return list(paths), f"the entries of challenge #{challenge.id}"
            paths = await session.scalars(select(Submission.image_path).where(
                Submission.guild_id == guild_id, Submission.exercise_id == source.exercise_id,
                Submission.latest, Submission.image_path.is_not(None)))
            return list(paths), f"the submissions to exercise {source.exercise_id}"[:100]

    def _read_zip(self, data: bytes, image_size: int) -> list[Image.Image]:
        """Every image in a zip, each checked like an upload and made a square of `image_size`; anything
        else in it is refused by name."""
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile:
            raise UserFacingError("That attachment is not a zip file. Zip a folder of images and attach it.") from None
        limit = self.settings.max_upload_bytes
        images = []
        with archive:
            members = [member for member in archive.infolist() if not member.is_dir()
                       and not PurePosixPath(member.filename).name.startswith(".")
                       and not member.filename.startswith(SKIPPED_IN_ZIPS)]
            if len(members) > self.settings.max_train_images:
                raise UserFacingError(f"The zip holds {len(members)} files; this bot trains on at most "
                                      f"{self.settings.max_train_images} images.")
            unpacked_budget = 2 * self.settings.max_train_zip_bytes  # images hardly compress: more is a zip bomb
            for member in members:
                shown = PurePosixPath(member.filename).name[:60]
                with archive.open(member) as file:
                    content = file.read(min(limit, unpacked_budget) + 1)  # the header's sizes may lie
                unpacked_budget -= len(content)
                if unpacked_budget < 0:
                    unpacked_limit = 2 * self.settings.max_train_zip_bytes / 1048576
                    raise UserFacingError(f"The zip unpacks to more than {unpacked_limit:.1f} MB. "
                                          "Send fewer or smaller images.")
                try:
                    image = load_image_bytes(content, max_bytes=limit, max_pixels=self.settings.max_image_pixels)
                except ImageRejected as error:
                    raise UserFacingError(f"`{shown}` in the zip: {error}") from None
                images.append(square_rgb(image, image_size))  # small at once: a thousand full images would not fit
        return images

    async def _create(self, request: TrainRequest, name: str, steps: int, images: int, source: str) -> GanModel:
        model = GanModel(guild_id=request.guild_id, name=name, created_by=request.host_id, source=source,
                         images=images, image_size=request.image_size, mirror=request.mirror, steps=steps)
        try:
            async with self.sessions.begin() as session:
                session.add(model)
        except IntegrityError:  # a second bot process took the name at the same moment
            raise UserFacingError(f"This server already has a model called `{name}`.") from None
        return model

    def _store_dataset(self, model_id: int, images: list[Image.Image], image_size: int) -> None:
        pixels = dataset_pixels(images, image_size)  # uint8 [N, 3, S, S]; the images are squares of that size already
        folder = self.folder(model_id)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(pixels, folder / DATASET_FILE)

    async def _forget(self, model: GanModel) -> None:
        async with self.sessions.begin() as session:
            await session.execute(delete(GanModel).where(GanModel.id == model.id))
        await asyncio.to_thread(shutil.rmtree, self.folder(model.id), True)

    async def models(self, guild_id: int) -> list[ModelInfo]:
        """The guild's models, newest first, each with its training's state as its job says now."""
        async with self.sessions() as session:
            rows = (await session.execute(
                select(GanModel, Job).outerjoin(Job, Job.id == GanModel.job_id)
                .where(GanModel.guild_id == guild_id).order_by(GanModel.created_at.desc())
            )).all()
        return [ModelInfo(model, *live_state(model, job)) for model, job in rows]

    async def find(self, guild_id: int, name: str) -> GanModel:
        async with self.sessions() as session:
            model = await session.scalar(select(GanModel).where(GanModel.guild_id == guild_id,
                                                                GanModel.name == name.strip().lower()))
        if model is None:
            raise UserFacingError(f"This server has no model called `{name[:40]}`. /models lists them.")
        return model

    async def remove(self, guild_id: int, name: str, host_id: int) -> GanModel:
        """Removes a model and its files; its training, if it still runs, is cancelled first."""
        model = await self.find(guild_id, name)
        if model.job_id is not None:
            job = await self.jobs.repository.get(model.job_id)
            if job is not None and job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
                await self.jobs.cancel(job.id, host_id, host_of_guild=guild_id)
        await self._forget(model)
        return model

    async def disk_used(self, guild_id: int) -> int:
        async with self.sessions() as session:
            return await session.scalar(select(func.coalesce(func.sum(GanModel.bytes_used), 0))
                                        .where(GanModel.guild_id == guild_id)) or 0

    async def use(self, request: JobRequest, name: str, spec_for) -> Receipt:
        """Queues a job on one of the guild's models (/sample, /walk); `spec_for(model)` makes its spec."""
        self._check_worker()
        if request.guild_id is None:
            raise UserFacingError("Models belong to servers: use this in the server that trained it.")
        model = await self.find(request.guild_id, name)
        job = await self.jobs.repository.get(model.job_id) if model.job_id is not None else None
        _, steps_done = live_state(model, job)
        if steps_done == 0:
            raise UserFacingError(f"`{model.name}` has not finished its first chunk of training yet; try again soon.")
        return await self.jobs.submit_prepared(request, spec_for(model), title=f"{request.technique} {model.name}")

    async def record_training(self, job: Job) -> None:
        """Keeps the model's row in step with its training job (called as the job's views change)."""
        status = STATUS_OF_JOB.get(job.status, GanStatus.TRAINING)
        async with self.sessions() as session:
            model = await session.scalar(select(GanModel).where(GanModel.job_id == job.id))
        if model is None:
            return
        used = await asyncio.to_thread(folder_bytes, self.folder(model.id))
        async with self.sessions.begin() as session:
            await session.execute(update(GanModel).where(GanModel.id == model.id).values(
                status=status, steps_done=max(job.progress_step, model.steps_done), bytes_used=used))


def live_state(model: GanModel, job: Job | None) -> tuple[GanStatus, int]:
    """A model's state from its training job while the job exists; from its own row after."""
    if job is None:
        return model.status, model.steps_done
    return STATUS_OF_JOB.get(job.status, GanStatus.TRAINING), max(job.progress_step, model.steps_done)


def default_train_size(settings: Settings) -> int:
    """128 px where the bot's worker has a GPU, 64 on the CPU."""
    return 128 if choose_device(settings.device).type == "cuda" else 64


def train_config(model: GanModel, settings: Settings) -> TrainConfig:
    return TrainConfig(model_id=model.id, steps=model.steps, image_size=model.image_size, mirror=model.mirror,
                       chunk_steps=settings.train_chunk_steps, width=settings.gan_width)


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) if folder.exists() else 0
