"""The generator service's limits and checks: names, sizes, steps, models per guild, data sets and zips."""

import io
import os
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from bot.errors import UserFacingError
from bot.generators import DataSource, GeneratorService, TrainRequest
from bot.guilds import GuildService
from bot.jobs.repository import JobRepository
from bot.jobs.service import JobRequest, JobService
from bot.jobs.uploads import UploadStore
from bot.moderation import ModerationService
from bot.settings import Settings
from models import Challenge, ChallengeEntry, GanModel, Job, JobStatus
from models.base import utcnow
from tests.postgres import both_engines

pytestmark = both_engines

GUILD, HOST = 10, 1


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, max_train_steps=100, max_train_images=6, max_gan_models=1,
                    max_upload_bytes=50_000, max_train_zip_bytes=100_000, gan_width=8)


@pytest.fixture
def generators(sessions, settings, tmp_path: Path) -> GeneratorService:
    moderation = ModerationService(sessions)
    jobs = JobService(settings, JobRepository(sessions), GuildService(sessions), moderation,
                      UploadStore(tmp_path / "uploads", max_bytes=50_000, max_pixels=1_000_000))
    return GeneratorService(settings, sessions, jobs, moderation, max_image_size=64)


def png(colour=(200, 30, 30), size=(32, 32)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def noise() -> bytes:
    """A PNG of random pixels, about 43 KB: it does not compress."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (120, 120), os.urandom(120 * 120 * 3)).save(buffer, format="PNG")
    return buffer.getvalue()


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def pictures(count: int) -> dict[str, bytes]:
    return {f"set/p{n}.png": png((n * 40 % 256, 90, 200)) for n in range(count)}


def request(name: str = "sea", **changes) -> TrainRequest:
    values = {"guild_id": GUILD, "host_id": HOST, "channel_id": 20, "name": name,
              "source": DataSource(zip_data=zipped(pictures(4))), "image_size": 32, "steps": 10} | changes
    return TrainRequest(**values)


async def stored(sessions) -> tuple[int, int]:
    async with sessions() as session:
        return (await session.scalar(select(func.count()).select_from(GanModel)),
                await session.scalar(select(func.count()).select_from(Job)))


async def test_a_good_request_stores_the_data_set_and_queues_the_training(generators, sessions):
    model, receipt = await generators.train(request(
        source=DataSource(zip_data=zipped(pictures(4) | {"__MACOSX/set/p0.png": b"x", "set/.DS_Store": b"x"}))))
    assert (model.images, model.image_size, model.steps, model.source) == (4, 32, 10, "an uploaded zip")
    assert receipt.job.technique == "train" and receipt.job.spec["config"]["model_id"] == model.id
    assert not receipt.job.host_lane  # its chunks take turns with everyone's jobs
    assert (generators.folder(model.id) / "dataset.pt").exists() and model.bytes_used > 0
    assert await generators.disk_used(GUILD) == model.bytes_used and await generators.disk_used(GUILD + 1) == 0
    assert await stored(sessions) == (1, 1)


@pytest.mark.parametrize("changes, message", [
    ({"name": "Sea Gan"}, "lowercase letters"),
    ({"name": "x" * 41}, "lowercase letters"),
    ({"image_size": 128}, "trains at 32, 64 pixels"),
    ({"image_size": 48}, "trains at 32, 64 pixels"),
    ({"steps": 101}, "1 to 100 steps"),
    ({"source": DataSource(zip_data=zipped(pictures(3)))}, "at least 4"),
    ({"source": DataSource(zip_data=zipped(pictures(7)))}, "The zip holds 7 files; this bot trains on at most 6"),
    ({"source": DataSource(zip_data=b"not a zip")}, "not a zip file"),
    ({"source": DataSource(zip_data=zipped(pictures(4) | {"set/read me.txt": b"hi"}))}, "`read me.txt` in the zip"),
    ({"source": DataSource(zip_data=zipped(pictures(4) | {"big.png": png(size=(400, 400)) + b"\0" * 60_000}))},
     "`big.png` in the zip"),
    ({"source": DataSource(zip_data=zipped({f"noise{n}.png": noise() for n in range(5)}))}, "unpacks to more than 0.2"),
    ({"source": DataSource()}, "Train on one thing"),
    ({"source": DataSource(challenge_id=5, zip_data=zipped(pictures(4)))}, "Train on one thing"),
    ({"source": DataSource(challenge_id=99)}, "no challenge #99"),
])
async def test_bad_requests_are_refused_and_store_nothing(generators, sessions, changes, message):
    with pytest.raises(UserFacingError, match=message):
        await generators.train(request(**changes))
    assert await stored(sessions) == (0, 0)
    assert not generators.workspace.exists() or not any(generators.workspace.iterdir())


async def test_a_guild_keeps_at_most_its_models_and_names_are_its_own(generators):
    await generators.train(request("sea"))
    with pytest.raises(UserFacingError, match="already has a model called `sea`"):
        await generators.train(request("sea"))
    with pytest.raises(UserFacingError, match="at most 1 models"):
        await generators.train(request("lake"))
    other, _ = await generators.train(request("sea", guild_id=GUILD + 1))  # another server, its own names
    assert other.guild_id == GUILD + 1
    assert [info.model.name for info in await generators.models(GUILD + 1)] == ["sea"]


async def test_a_blocked_name_is_refused(generators, sessions):
    await generators.moderation.add_term(GUILD, "word", "badword", HOST)
    with pytest.raises(UserFacingError, match="do not allow that name"):
        await generators.train(request("badword-gan"))
    assert await stored(sessions) == (0, 0)


async def test_without_its_own_worker_the_bot_trains_nothing(generators, sessions):
    generators.has_worker = False
    with pytest.raises(UserFacingError, match="own worker"):
        await generators.train(request())
    assert await stored(sessions) == (0, 0)


async def test_another_servers_challenge_is_not_a_data_set(generators, sessions):
    async with sessions.begin() as session:
        elsewhere = Challenge(guild_id=GUILD + 1, title="t", theme="t", submissions_close_at=utcnow(),
                              voting_close_at=utcnow(), created_by=2, channel_id=30)
        session.add(elsewhere)
    with pytest.raises(UserFacingError, match=f"no challenge #{elsewhere.id}"):
        await generators.train(request(source=DataSource(challenge_id=elsewhere.id)))
    assert await stored(sessions) == (0, 0)


async def test_a_models_jobs_cannot_be_asked_for_by_name_or_recipe(generators):
    for technique in ("train", "sample", "walk"):
        with pytest.raises(UserFacingError, match="Unknown technique"):
            await generators.jobs.submit(JobRequest(technique=technique, user_id=2, channel_id=20, guild_id=GUILD,
                                                    text="--model-id 1"))


async def test_a_challenge_with_more_entries_than_the_limit_is_refused(generators, sessions, tmp_path):
    async with sessions.begin() as session:
        challenge = Challenge(guild_id=GUILD, title="t", theme="t", submissions_close_at=utcnow(),
                              voting_close_at=utcnow(), created_by=HOST, channel_id=30)
        session.add(challenge)
    entries = []
    for slot in range(7):
        path = tmp_path / f"entry-{slot}.png"
        path.write_bytes(png((slot * 30, 80, 80)))
        entries.append(ChallengeEntry(challenge_id=challenge.id, user_id=100 + slot, slot=1, image_path=str(path)))
    async with sessions.begin() as session:
        session.add_all(entries)
    with pytest.raises(UserFacingError, match="That gives 7 images; this bot trains on at most 6"):
        await generators.train(request(source=DataSource(challenge_id=challenge.id)))
    assert await stored(sessions) == (0, 0)


async def test_a_model_is_sampled_only_once_it_has_trained_a_chunk(generators):
    await generators.train(request("sea"))
    ask = JobRequest(technique="sample", user_id=2, channel_id=20, guild_id=GUILD)
    with pytest.raises(UserFacingError, match="has not finished its first chunk"):
        await generators.use(ask, "sea", lambda found: pytest.fail("no job may be made"))
    with pytest.raises(UserFacingError, match="Models belong to servers"):
        await generators.use(JobRequest(technique="sample", user_id=2, channel_id=20, guild_id=None), "sea",
                             lambda found: pytest.fail("no job may be made"))


async def test_removing_a_model_cancels_its_training_and_deletes_its_files(generators, sessions):
    model, receipt = await generators.train(request("sea"))
    await generators.remove(GUILD, "sea", HOST)
    assert (await generators.jobs.repository.get(receipt.job.id)).status == JobStatus.CANCELLED
    assert not generators.folder(model.id).exists()
    assert await generators.models(GUILD) == []
