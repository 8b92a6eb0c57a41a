"""/compare end to end: one job whose variants learn side by side in its thread, and one contact sheet at the end.

The real bot runs against the fake Discord with the tiny CLIP (random weights) on the CPU.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from bot.art.contact_sheet import GAP
from bot.art.imagefiles import read_png_text
from bot.art.techniques.compare import SHEET_TILE_SIDES, STATUS_TILE_SIDE
from models import JobStatus
from tests.discord_fake import FakeDiscord
from tests.e2e.conftest import RunningBot, bot_settings
from tests.e2e.test_generation import (
    EPHEMERAL,
    FAST,
    HOST_PERMISSIONS,
    final_message,
    imagine,
    job_id_of,
    job_row,
    receipt_complete,
    set_queue,
    wait_for_status,
)


@pytest.fixture
async def easel(fake: FakeDiscord, tmp_path: Path):
    running = RunningBot(bot_settings(fake, tmp_path, **FAST))
    yield running
    await running.stop()


async def compare(fake: FakeDiscord, user, prompt: str, what: str, **options):
    """Runs /compare; returns once the receipt is complete."""
    interaction = await fake.send_command(user, "compare", {"prompt": prompt, "what": what, **options})
    await fake.wait_until(lambda: receipt_complete(interaction), timeout=30)
    return interaction


def width_of(tiles: int, side: int) -> int:
    return tiles * (side + GAP) + GAP


async def test_compare_shows_the_variants_side_by_side_and_ends_with_one_contact_sheet(fake: FakeDiscord,
                                                                                       easel: RunningBot):
    bot = await easel.start()
    student = fake.add_member("student")
    interaction = await compare(fake, student, "a lighthouse in a storm --cutn 2", "lr", steps=4, size=32)
    assert interaction.original.ephemeral and "position 1" in interaction.original.content
    job = await wait_for_status(fake, bot, job_id_of(interaction), JobStatus.DONE)
    assert job.technique == "compare" and job.total_steps == 4  # its progress counts the steps all variants take
    await fake.wait_until(lambda: final_message(fake, job.thread_id) is not None)
    assert "lighthouse" in fake.threads[job.thread_id].name

    status = fake.get_message(job.status_message_id)
    previews = [attachment for snapshot in status.edit_history for attachment in snapshot["attachments"]]
    assert previews, "the status message showed the variants while they learned"
    assert Image.open(io.BytesIO(previews[-1].data)).width == width_of(3, STATUS_TILE_SIDE)
    keyframes = [m for m in fake.messages(job.thread_id) if m.content.startswith("Step ")]
    assert keyframes and all(m.content.endswith("/4") for m in keyframes)
    assert Image.open(io.BytesIO(keyframes[0].attachments[0].data)).width == width_of(3, STATUS_TILE_SIDE)

    final = final_message(fake, job.thread_id)
    assert [a.filename for a in final.attachments] == [f"easel-{job.id}.png", f"easel-{job.id}-steps.gif",
                                                       f"easel-{job.id}-loss.png"]
    sheet = final.attachments[0].data
    assert Image.open(io.BytesIO(sheet)).width == width_of(3, SHEET_TILE_SIDES[0])  # one tile per variant
    recipe = json.loads(read_png_text(sheet, max_bytes=10 * 1024 * 1024)["easel"])
    assert recipe["technique"] == "compare" and recipe["config"]["what"] == "lr"
    parameters = next(f["value"] for f in final.embeds[0]["fields"] if f["name"] == "Parameters")
    assert "what='lr'" in parameters and "values='0.01, 0.05, 0.2'" in parameters
    assert f"easel:reroll:{job.id}" in final.custom_ids()
    assert f"easel:continue:{job.id}" not in final.custom_ids()  # a sheet of several images is no start


async def test_a_compares_steps_count_once_per_variant_against_the_servers_limit(fake: FakeDiscord,
                                                                                 easel: RunningBot):
    await easel.start()
    host = fake.add_member("teacher", permissions=HOST_PERMISSIONS)
    limits = await fake.send_command(host, "easel", {"max_steps": 50}, subcommand=["limits"])
    await fake.wait_until(lambda: limits.original is not None and "Saved." in limits.original.content)
    interaction = await compare(fake, fake.add_member("student"), "a cat --cutn 2", "seed", values="1, 2, 3, 4",
                                steps=40, size=32)
    assert "steps clamped to 12 (× 4 variants)" in interaction.original.content


async def test_a_compare_is_rerolled_and_remixed_but_is_no_input_image(fake: FakeDiscord, easel: RunningBot):
    bot = await easel.start()
    student = fake.add_member("student")
    job_id = job_id_of(await compare(fake, student, "a red kite --cutn 2", "seed", values="5, 6", steps=2, size=32))
    job = await wait_for_status(fake, bot, job_id, JobStatus.DONE)
    await fake.wait_until(lambda: final_message(fake, job.thread_id) is not None)
    final = final_message(fake, job.thread_id)

    reroll = await fake.press_button(student, final, f"easel:reroll:{job_id}")
    await fake.wait_until(lambda: reroll.original is not None and "Queued job #" in reroll.original.content)
    rerolled = await job_row(bot, job_id_of(reroll))
    assert rerolled.technique == "compare" and rerolled.parent_job_id == job_id
    assert rerolled.spec["config"]["what"] == "seed" and rerolled.spec["config"]["values"] is None  # new seeds

    remix = await fake.press_button(student, final, f"easel:remix:{job_id}")
    modal = await fake.wait_for_response(remix)
    inputs = {field["custom_id"]: field.get("value") for row in modal.data["components"] for field in row["components"]}
    assert inputs["options"].startswith("--what seed --values '5, 6' --steps 2 --size 32 ")  # what it compares
    submitted = await fake.submit_modal(student, modal.data["custom_id"],
                                        {"prompt": "a blue kite", "options": "--what cutn --values '2, 4' --steps 2"})
    await fake.wait_until(lambda: submitted.original is not None and "Queued job #" in submitted.original.content)
    remixed = (await job_row(bot, job_id_of(submitted))).spec["config"]
    assert (remixed["prompt"], remixed["what"], remixed["values"], remixed["size"]) == ("a blue kite", "cutn",
                                                                                       "2, 4", 32)

    refused = await imagine(fake, student, f"a kite --init-image job:{job_id} --cutn 2", steps=2, size=32)
    assert refused.original.flags & EPHEMERAL
    assert "contact sheet of several images" in refused.original.content
    assert "/imagine" in refused.original.content


async def test_without_clip_weights_compare_says_so_and_queues_nothing(fake: FakeDiscord, tmp_path: Path):
    missing = str(tmp_path / "missing.safetensors")
    running = RunningBot(bot_settings(fake, tmp_path, **(FAST | {"clip_pretrained": missing})))
    bot = await running.start()
    try:
        student = fake.add_member("student")
        interaction = await compare(fake, student, "a cat", "lr")
        assert interaction.original.ephemeral
        assert "/compare cannot run on this bot yet" in interaction.original.content
        assert f"CLIP_PRETRAINED={missing}" in interaction.original.content
        assert await bot.job_repository.active_for_user(student.id) == []
    finally:
        await running.stop()


async def test_a_compare_is_one_job_in_the_workers_batch_beside_an_imagine(fake: FakeDiscord, tmp_path: Path):
    running = RunningBot(bot_settings(fake, tmp_path, **(FAST | {"batch_jobs": 2})))
    bot = await running.start()
    try:
        host = fake.add_member("teacher", permissions=HOST_PERMISSIONS)
        await set_queue(fake, host, "pause")  # both are queued before either starts
        alice, bob = fake.add_member("alice"), fake.add_member("bob")
        compared = job_id_of(await compare(fake, alice, "a lighthouse --cutn 2", "cutn", values="2, 3", steps=40,
                                           size=32))
        imagined = job_id_of(await imagine(fake, bob, "a red fox --cutn 2", steps=40, size=32))
        await set_queue(fake, host, "resume")
        # Two jobs fill the batch of two: the compare's variants count as one job.
        await fake.wait_until(lambda: all((bot.runner.step_of(job_id) or 0) >= 2 for job_id in (compared, imagined)),
                              timeout=60)
        for job_id in (compared, imagined):
            job = await wait_for_status(fake, bot, job_id, JobStatus.DONE)
            await fake.wait_until(lambda job=job: final_message(fake, job.thread_id) is not None, timeout=30)
        sheet = final_message(fake, (await job_row(bot, compared)).thread_id).attachments[0].data
        assert Image.open(io.BytesIO(sheet)).width == width_of(2, SHEET_TILE_SIDES[0])
    finally:
        await running.stop()
