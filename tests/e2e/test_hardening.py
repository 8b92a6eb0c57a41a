"""The holes a review found, closed and checked through the real bot against the strict fake Discord."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot import db
from bot.jobs.repository import JobRepository
from models import JobStatus
from tests.discord_fake import FakeDiscord
from tests.e2e.conftest import RunningBot, bot_settings
from tests.e2e.test_generation import (
    FAST,
    HOST_PERMISSIONS,
    imagine,
    job_id_of,
    job_row,
    set_queue,
    wait_for_status,
)

CPPN = {"size": 16, "steps": 2}


@pytest.fixture
async def easel(fake: FakeDiscord, tmp_path: Path):
    running = RunningBot(bot_settings(fake, tmp_path, **FAST))
    yield running
    await running.stop()


async def answer_of(fake: FakeDiscord, interaction) -> str:
    return (await fake.answer(interaction)).content


HOST_COMMANDS = [
    (["limits"], {"max_steps": 10}),
    (["moderation", "add"], {"kind": "word", "value": "kite"}),
    (["moderation", "remove"], {"kind": "word", "value": "gore"}),
    (["moderation", "list"], {}),
    (["queue", "pause"], {}),
    (["queue", "resume"], {}),
    (["config"], {}),
]


@pytest.mark.parametrize(("subcommand", "options"), HOST_COMMANDS, ids=lambda value: str(value))
async def test_every_host_command_is_refused_to_a_student_and_changes_nothing(fake, easel, subcommand, options):
    bot = await easel.start()
    await bot.moderation.add_term(fake.guild_id, "word", "gore", added_by=fake.owner.id)
    await bot.guild_service.update(fake.guild_id, queue_paused=True)
    student = fake.add_member("student")
    interaction = await fake.send_command(student, "easel", options, subcommand=subcommand)
    assert "Only hosts can do this" in await answer_of(fake, interaction)
    assert interaction.original.ephemeral
    config = await bot.guild_service.get(fake.guild_id)
    assert config.queue_paused and config.max_steps is None
    assert [term.value for term in await bot.moderation.list_terms(fake.guild_id)] == ["gore"]


async def test_a_student_cannot_cancel_someone_elses_job_by_command_or_button(fake, easel):
    bot = await easel.start()
    host = fake.add_member("host", permissions=HOST_PERMISSIONS)
    await set_queue(fake, host, "pause")
    author, other = fake.add_member("author"), fake.add_member("other")
    job_id = job_id_of(await imagine(fake, author, "a kite --steps 2 --size 32"))
    refused = await fake.send_command(other, "cancel", {"job": job_id})
    assert "only cancel your own" in await answer_of(fake, refused)
    status = (await job_row(bot, job_id)).status_message_id
    pressed = await fake.press_button(other, fake.get_message(status), f"easel:cancel:{job_id}")
    assert "only cancel your own" in await answer_of(fake, pressed)
    assert (await job_row(bot, job_id)).status == JobStatus.QUEUED


async def test_a_hosts_job_goes_first_in_its_guild(fake, easel):
    bot = await easel.start()
    host = fake.add_member("host", permissions=HOST_PERMISSIONS)
    await set_queue(fake, host, "pause")
    students = [fake.add_member(f"student{n}") for n in range(2)]
    early = [job_id_of(await imagine(fake, student, "a kite --steps 2 --size 32")) for student in students]
    demo = job_id_of(await imagine(fake, host, "the demo --steps 2 --size 32"))
    await set_queue(fake, host, "resume")
    finished = [await wait_for_status(fake, bot, job_id, JobStatus.DONE) for job_id in [*early, demo]]
    started = sorted(finished, key=lambda job: job.started_at)
    assert [job.id for job in started] == [demo, *early]


async def test_a_cancelled_queued_job_says_so_and_loses_its_cancel_button(fake, easel):
    bot = await easel.start()
    host = fake.add_member("host", permissions=HOST_PERMISSIONS)
    await set_queue(fake, host, "pause")
    author = fake.add_member("author")
    job_id = job_id_of(await imagine(fake, author, "a kite --steps 2 --size 32"))
    cancelled = await fake.send_command(author, "cancel", {"job": job_id})
    assert "Cancelled" in await answer_of(fake, cancelled)
    status = fake.get_message((await job_row(bot, job_id)).status_message_id)
    await fake.wait_until(lambda: "Cancelled" in status.embeds[0]["description"])
    assert status.custom_ids() == []


async def test_a_dm_job_plays_out_in_the_dm_and_stays_its_authors(fake, easel):
    bot = await easel.start()
    author, stranger = fake.add_member("author"), fake.add_member("stranger")
    dm = fake.dm_channel(author)
    queued = await fake.send_command(author, "cppn", CPPN, channel_id=dm)
    job = await wait_for_status(fake, bot, job_id_of_answer(await answer_of(fake, queued)), JobStatus.DONE)
    assert job.guild_id is None and job.thread_id == dm
    await fake.wait_until(lambda: any(f"easel:reroll:{job.id}" in m.custom_ids() for m in fake.messages(dm)))
    assert len(fake.pings_of(author)) == 1

    for where in (fake.dm_channel(stranger), fake.channel_id):
        asked = await fake.send_command(stranger, "job", {"id": job.id}, channel_id=where)
        assert f"no job #{job.id} that you can see" in await answer_of(fake, asked)
        assert asked.original.ephemeral


async def test_a_second_server_sees_neither_the_job_nor_the_running_one(fake, easel):
    bot = await easel.start()
    other_guild = fake.add_guild("Elsewhere")
    host = fake.add_member("host", permissions=HOST_PERMISSIONS)
    await set_queue(fake, host, "pause")
    author = fake.add_member("author")
    job_id = job_id_of(await imagine(fake, author, "a secret garden --steps 2 --size 32"))
    await bot.job_repository.transition(job_id, JobStatus.QUEUED, JobStatus.RUNNING)  # as if it ran now

    visitor = fake.add_member("visitor", guild_id=other_guild)
    elsewhere = fake.guild(other_guild).channel_id
    shown = await fake.send_command(visitor, "job", {"id": job_id}, channel_id=elsewhere)
    assert "that you can see" in await answer_of(fake, shown)
    for command in ("queue", "about"):
        asked = await fake.send_command(visitor, command, channel_id=elsewhere)
        await fake.wait_until(lambda asked=asked: asked.original is not None and not asked.original.flags & 128)
        seen = asked.original.content + str(asked.original.embeds)
        assert f"#{job_id}" not in seen and "secret" not in seen and "(imagine)" not in seen


async def test_a_job_asked_for_in_a_second_server_gets_its_thread_there(fake, easel):
    bot = await easel.start()
    other_guild = fake.add_guild("Elsewhere")
    member = fake.add_member("member", guild_id=other_guild)
    queued = await fake.send_command(member, "cppn", CPPN, channel_id=fake.guild(other_guild).channel_id)
    job = await wait_for_status(fake, bot, job_id_of_answer(await answer_of(fake, queued)), JobStatus.DONE)
    assert job.guild_id == other_guild and fake.guild_of(job.thread_id) == other_guild


async def test_the_author_is_pinged_once_per_job_and_nobody_else_ever(fake, easel):
    bot = await easel.start()
    author, bystander = fake.add_member("author"), fake.add_member("bystander")
    role = fake.add_role("everyone-ish")
    text = f"<@{bystander.id}> and <@&{role}> and @everyone @here --steps 2 --size 32"
    job_id = job_id_of(await imagine(fake, author, text))
    job = await wait_for_status(fake, bot, job_id, JobStatus.DONE)
    await fake.wait_until(lambda: any(f"easel:reroll:{job_id}" in m.custom_ids() for m in fake.messages(job.thread_id)))
    shown = await fake.send_command(bystander, "job", {"id": job_id})
    await fake.wait_until(lambda: shown.original is not None and shown.original.attachments)

    failing = await fake.send_command(author, "imagine", {"prompt": f"{text} --init-image <@{bystander.id}>"})
    assert "attach" in await answer_of(fake, failing)
    assert [message.id for message in fake.pings_of(author)] == [(await job_row(bot, job_id)).final_message_id]
    assert fake.pings_of(bystander) == []
    everything = [fake.get_message(m.id) for m in fake._messages.values() if not m.deleted]
    assert not any(message.pinged_everyone or message.pinged_roles for message in everything)


async def test_a_failure_notice_pings_only_its_author(fake, easel):
    bot = await easel.start()
    author, bystander = fake.add_member("author"), fake.add_member("bystander")
    job_id = job_id_of(await imagine(fake, author, f"<@{bystander.id}> @everyone --steps 2 --size 32"))
    job = await wait_for_status(fake, bot, job_id, JobStatus.DONE)
    await bot.publisher.job_failed(job, f"it went wrong for <@{bystander.id}> and @everyone")
    assert fake.pings_of(bystander) == []
    notice = fake.get_message((await job_row(bot, job_id)).failure_notice_message_id)
    assert notice.pinged_users == [author.id] and not notice.pinged_everyone


async def test_moderation_covers_option_strings_and_remix_text(fake, easel):
    bot = await easel.start()
    await bot.moderation.add_term(fake.guild_id, "word", "gore", added_by=fake.owner.id)
    student = fake.add_member("student")
    negative = await fake.send_command(student, "imagine", {"prompt": "a kite", "negative": "blur, GORE"})
    assert "do not allow" in await answer_of(fake, negative)

    job_id = job_id_of(await imagine(fake, student, "a kite --steps 2 --size 32"))
    job = await wait_for_status(fake, bot, job_id, JobStatus.DONE)
    await fake.wait_until(lambda: job.thread_id and any(
        f"easel:remix:{job_id}" in m.custom_ids() for m in fake.messages(job.thread_id)))
    final = next(m for m in fake.messages(job.thread_id) if f"easel:remix:{job_id}" in m.custom_ids())
    remix = await fake.press_button(student, final, f"easel:remix:{job_id}")
    modal = await fake.wait_for_response(remix)
    submitted = await fake.submit_modal(student, modal.data["custom_id"],
                                        {"prompt": "a kite", "options": "--no go''re --steps 2"}, message=final)
    assert "do not allow" in await answer_of(fake, submitted)
    assert len(await bot.moderation.recent_refusals(fake.guild_id)) == 2


async def test_a_deleted_status_message_does_not_stop_the_result(fake, easel):
    bot = await easel.start()
    host = fake.add_member("host", permissions=HOST_PERMISSIONS)
    await set_queue(fake, host, "pause")
    author = fake.add_member("author")
    job_id = job_id_of(await imagine(fake, author, "a kite --steps 2 --size 32"))
    fake.delete_message(fake.get_message((await job_row(bot, job_id)).status_message_id))
    await set_queue(fake, host, "resume")
    job = await wait_for_status(fake, bot, job_id, JobStatus.DONE)
    await fake.wait_until(lambda: any(f"easel:reroll:{job_id}" in m.custom_ids() for m in fake.messages(job.thread_id)))


async def test_after_a_restart_one_bad_result_does_not_hold_back_the_others(fake, easel, caplog):
    bot = await easel.start()
    author = fake.add_member("author")
    jobs = []
    for _ in range(3):
        job_id = job_id_of(await imagine(fake, author, "a kite --steps 2 --size 32"))
        jobs.append(await wait_for_status(fake, bot, job_id, JobStatus.DONE))
    await easel.stop()
    # The posts never reached Discord (an outage); since then one image broke and one was removed.
    engine = db.create_engine(easel.settings.resolved_database_url)
    repository = JobRepository(db.create_session_factory(engine))
    for job in jobs:
        await repository.update_views(job.id, final_message_id=None)
    await engine.dispose()
    await asyncio.to_thread(Path(jobs[0].result_path).write_bytes, b"not a png any more")
    await asyncio.to_thread(Path(jobs[1].result_path).unlink)

    await easel.start()
    await fake.wait_until(lambda: any(f"easel:reroll:{jobs[2].id}" in m.custom_ids()
                                      for m in fake.messages(jobs[2].thread_id)))
    notices = [m for m in fake.messages(jobs[1].thread_id) if "no longer stored" in m.content]
    assert len(notices) == 1
    assert any(f"job {jobs[0].id}: could not post its outcome" in record.getMessage() for record in caplog.records)


def job_id_of_answer(content: str) -> int:
    assert "Queued job #" in content, content
    return int(content.split("Queued job #")[1].split(".")[0])


async def test_a_guild_limit_below_what_techniques_need_is_refused_when_set(fake, easel):
    bot = await easel.start()
    asked = await fake.send_command(fake.owner, "easel", {"max_size": 16}, subcommand=["limits"])
    assert "between 32" in await answer_of(fake, asked)
    assert (await bot.guild_service.get(fake.guild_id)).max_size is None


async def test_long_answers_are_fitted_to_discords_limits(fake, easel):
    await easel.start()
    student = fake.add_member("student")
    unknown_flag = await fake.send_command(student, "imagine", {"prompt": "a cat --" + "x" * 2500})
    assert "Unknown option" in await answer_of(fake, unknown_flag)
    removed = await fake.send_command(fake.owner, "easel", {"kind": "word", "value": "y" * 3000},
                                      subcommand=["moderation", "remove"])
    assert "was not blocked" in await answer_of(fake, removed)
    assert len(removed.original.content) <= 2000  # and the fake saw no 50035 (checked at teardown)


async def test_showing_a_waiting_job_pings_nobody(fake, easel):
    bot = await easel.start()
    host = fake.add_member("host", permissions=HOST_PERMISSIONS)
    await set_queue(fake, host, "pause")
    author, bystander = fake.add_member("author"), fake.add_member("bystander")
    job_id = job_id_of(await imagine(fake, author, f"hello <@{bystander.id}> @everyone --steps 2 --size 32"))
    shown = await fake.send_command(author, "job", {"id": job_id})
    assert "Waiting" in await answer_of(fake, shown) and not shown.original.ephemeral
    assert fake.pings_of(bystander) == [] and not shown.original.pinged_everyone
    assert (await job_row(bot, job_id)).status == JobStatus.QUEUED
