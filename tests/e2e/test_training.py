"""A community GAN end to end: a host trains one on a challenge's entries, its grid learns chunk by chunk in a
thread while other jobs still run, and then members sample it and walk its latent space."""

from __future__ import annotations

import asyncio
import io
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from bot.jobs.repository import JobRepository
from models import GanModel, Job, JobStatus
from tests.clock import Clock
from tests.discord_fake import FakeDiscord
from tests.e2e.conftest import bot_settings
from tests.e2e.test_challenges import ClockedBot, enter, open_challenge
from tests.e2e.test_generation import (
    FAST,
    HOST_PERMISSIONS,
    job_id_of,
    png,
    set_queue,
    wait_for_status,
)

TRAINING = FAST | {"train_chunk_steps": 2, "gan_width": 8, "max_train_steps": 50, "max_gan_models": 2}
COLOURS = [(250, 0, 0), (0, 250, 0), (0, 0, 250), (250, 250, 0)]


@pytest.fixture
async def easel(fake: FakeDiscord, tmp_path: Path):
    running = ClockedBot(bot_settings(fake, tmp_path / "data", **TRAINING), Clock())
    yield running
    await running.stop()


def grid_posts(fake: FakeDiscord, thread_id: int) -> list[int]:
    """The steps of the sample grids posted in a training's thread, in order."""
    return [int(m.content.split("/")[0].removeprefix("Step ")) for m in fake.messages(thread_id)
            if m.content.startswith("Step ") and "same latents" in m.content]


async def train(fake: FakeDiscord, host, name: str, **options: object):
    attachments = options.pop("attachments", None)
    interaction = await fake.send_command(host, "train", {"name": name, "size": 32, **options},
                                          attachments=attachments)
    await fake.wait_until(lambda: interaction.original is not None and interaction.original.content, timeout=60)
    return interaction


async def thread_of_job(bot, job_id: int) -> int:
    """The job's thread, once the bot has opened it (a moment after the receipt)."""
    for _ in range(600):
        job = await JobRepository(bot.sessions).get(job_id)
        if job.thread_id is not None:
            return job.thread_id
        await asyncio.sleep(0.05)
    raise TimeoutError(f"job {job_id} got no thread")


def result_post(fake: FakeDiscord, thread_id: int):
    posts = [m for m in fake.messages(thread_id) if "your job is done" in m.content]
    assert len(posts) <= 1, "the result was posted more than once"
    return posts[0] if posts else None


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


async def test_a_host_trains_on_a_challenges_entries_and_members_sample_and_walk_it(fake: FakeDiscord, easel):
    bot = await easel.start()
    host = fake.add_member("host", permissions=HOST_PERMISSIONS)
    members = [fake.add_member(f"artist{n}") for n in range(4)]
    challenge_id, _ = await open_challenge(fake, bot, host)
    for member, colour in zip(members, COLOURS, strict=True):
        await enter(fake, member, challenge_id, image=png((48, 40), colour))

    await set_queue(fake, host, "pause")  # both wait: the training's first chunk, then the student's turn
    training = await train(fake, host, "city-gan", challenge=challenge_id, steps=6)
    assert "trains on 4 images (the entries of challenge" in training.original.content
    train_job = job_id_of(training)
    student = fake.add_member("student")
    other = await fake.send_command(student, "cppn", {"size": 16, "steps": 2})
    await fake.answer(other)
    await set_queue(fake, host, "resume")

    done = await wait_for_status(fake, bot, train_job, JobStatus.DONE, within=120)
    cppn_job = await wait_for_status(fake, bot, job_id_of(other), JobStatus.DONE)
    assert cppn_job.started_at < done.started_at  # it ran before the last chunk (a claim sets started_at)
    assert done.attempts == 1  # each chunk is a fresh start: a crash in the tenth chunk is its first, not its tenth
    await fake.wait_until(lambda: result_post(fake, done.thread_id) is not None, timeout=30)
    assert grid_posts(fake, done.thread_id) == [2, 4]  # one grid per chunk; the last one is the result
    grids = [m for m in fake.messages(done.thread_id) if m.content.startswith("Step ")]
    assert all(len(m.attachments) == 2 and not m.pinged_users for m in grids)  # the grid and both losses
    final = result_post(fake, done.thread_id)
    assert [a.filename.rsplit(".", 1)[-1] for a in final.attachments] == ["png", "gif", "png"]

    listing = await fake.answer(await fake.send_command(host, "models"))
    assert "`city-gan`: ready, 6/6 steps, 4 images at 32 px" in listing.content and "Disk used" in listing.content
    student_listing = await fake.answer(await fake.send_command(student, "models"))
    assert "city-gan" in student_listing.content and "Disk used" not in student_listing.content

    sampled = await fake.send_command(student, "sample", {"model": "city-gan", "n": 4, "seed": 3, "size": 64})
    await fake.answer(sampled)
    sample_job = await wait_for_status(fake, bot, job_id_of(sampled), JobStatus.DONE)
    await fake.wait_until(lambda: result_post(fake, sample_job.thread_id) is not None, timeout=30)
    posted = result_post(fake, sample_job.thread_id)
    assert not any("reroll" in custom_id or "remix" in custom_id for custom_id in posted.custom_ids())
    grid = Image.open(io.BytesIO(posted.attachments[0].data))
    assert grid.width > 2 * 64  # two columns of 64 px images, beyond the 32 px it trained at

    walked = await fake.send_command(student, "walk", {"model": "city-gan", "seed": 1, "frames": 8})
    await fake.answer(walked)
    walk_job = await wait_for_status(fake, bot, job_id_of(walked), JobStatus.DONE)
    await fake.wait_until(lambda: result_post(fake, walk_job.thread_id) is not None, timeout=30)
    animation = Image.open(io.BytesIO(result_post(fake, walk_job.thread_id).attachments[1].data))
    assert animation.n_frames == 8
    durations = []
    for index in range(animation.n_frames):
        animation.seek(index)
        durations.append(animation.info["duration"])
    assert len(set(durations)) == 1  # a seamless loop: no pause on its last frame


async def test_training_pauses_with_the_queue_resumes_after_a_restart_and_posts_no_grid_twice(fake: FakeDiscord,
                                                                                              easel):
    bot = await easel.start()
    host = fake.add_member("host", permissions=HOST_PERMISSIONS)
    images = zipped({f"picture-{n}.png": png((32, 32), colour) for n, colour in enumerate(COLOURS)})
    training = await train(fake, host, "restart-gan", steps=20,
                           attachments={"images": ("pictures.zip", images, "application/zip")})
    job_id = job_id_of(training)
    thread_id = await thread_of_job(bot, job_id)
    for _ in range(1200):  # the first chunk is done (its grid may still be on its way to Discord)
        if (await JobRepository(bot.sessions).get(job_id)).progress_step >= 2:
            break
        await asyncio.sleep(0.01)
    await set_queue(fake, host, "pause")  # the chunk under way ends; the next one waits
    paused = await wait_for_status(fake, bot, job_id, JobStatus.QUEUED)
    assert 0 < paused.progress_step < 20
    await fake.wait_until(lambda: paused.progress_step in grid_posts(fake, thread_id), timeout=60)

    await easel.stop()
    await asyncio.sleep(5)  # the channel's edit window (5 s) outlives the process; a real restart takes longer
    bot = await easel.start()
    await asyncio.sleep(0.5)
    assert (await wait_for_status(fake, bot, job_id, JobStatus.QUEUED)).progress_step == paused.progress_step
    await set_queue(fake, host, "resume")
    done = await wait_for_status(fake, bot, job_id, JobStatus.DONE, within=120)
    await fake.wait_until(lambda: result_post(fake, thread_id) is not None, timeout=30)
    steps = grid_posts(fake, thread_id)
    assert len(steps) == len(set(steps)) and steps == sorted(steps) and steps[-1] < 20 and done.progress_step == 20
    assert paused.progress_step in steps  # the grid from before the restart, and after it only later ones
    async with bot.sessions() as session:
        model = await session.scalar(select(GanModel).where(GanModel.name == "restart-gan"))
    assert (model.status, model.steps_done) == ("ready", 20)


@pytest.mark.parametrize("case, expected", [
    ("not a zip", "not a zip file"),
    ("a text file inside", "`notes.txt` in the zip"),
    ("too few images", "at least 4"),
    ("a bad name", "lowercase letters"),
])
async def test_bad_training_requests_are_refused_privately_and_store_nothing(fake: FakeDiscord, easel, case,
                                                                              expected):
    bot = await easel.start()
    host = fake.add_member("host", permissions=HOST_PERMISSIONS)
    pictures = {f"p{n}.png": png((32, 32), colour) for n, colour in enumerate(COLOURS)}
    data = {"not a zip": b"PK but not really", "a text file inside": zipped(pictures | {"notes.txt": b"hello"}),
            "too few images": zipped(dict(list(pictures.items())[:2])), "a bad name": zipped(pictures)}[case]
    name = "Bad Name!" if case == "a bad name" else "fine"
    interaction = await fake.send_command(host, "train", {"name": name},
                                          attachments={"images": ("set.zip", data, "application/zip")})
    reply = await fake.answer(interaction)
    assert reply.ephemeral and expected in reply.content
    async with bot.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(GanModel)) == 0
        assert await session.scalar(select(func.count()).select_from(Job)) == 0
    assert not (Path(bot.settings.data_dir) / "gan").exists() or not any((Path(bot.settings.data_dir) / "gan")
                                                                         .iterdir())


async def test_only_hosts_train_and_remove_and_models_stay_in_their_server(fake: FakeDiscord, easel):
    bot = await easel.start()
    host = fake.add_member("host", permissions=HOST_PERMISSIONS)
    student = fake.add_member("student")
    images = zipped({f"p{n}.png": png((32, 32), colour) for n, colour in enumerate(COLOURS)})
    refused = await fake.answer(await fake.send_command(
        student, "train", {"name": "mine"}, attachments={"images": ("set.zip", images, "application/zip")}))
    assert refused.ephemeral and "Only hosts" in refused.content

    training = await train(fake, host, "ours", steps=2, attachments={"images": ("set.zip", images, "application/zip")})
    await wait_for_status(fake, bot, job_id_of(training), JobStatus.DONE, within=120)
    elsewhere = await bot.generators.models(fake.guild_id + 1)
    assert elsewhere == []
    with pytest.raises(Exception, match="no model called"):
        await bot.generators.find(fake.guild_id + 1, "ours")

    not_allowed = await fake.answer(await fake.send_command(student, "remove-model", {"name": "ours"}))
    assert "Only hosts" in not_allowed.content
    removed = await fake.answer(await fake.send_command(host, "remove-model", {"name": "ours"}))
    assert "Removed `ours`" in removed.content
    assert await bot.generators.models(fake.guild_id) == []
    assert not any((Path(bot.settings.data_dir) / "gan").iterdir())
    gone = await fake.answer(await fake.send_command(student, "sample", {"model": "ours"}))
    assert gone.ephemeral and "no model called `ours`" in gone.content
