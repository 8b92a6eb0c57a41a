import asyncio
import io
from pathlib import Path

import pytest
from PIL import Image

from bot.errors import UserFacingError
from bot.guilds import GuildService
from bot.jobs.repository import JobRepository
from bot.jobs.service import JobRequest, JobService
from bot.jobs.uploads import UploadStore
from bot.moderation import ModerationService
from bot.settings import Settings
from models import JobStatus
from tests.postgres import both_engines

pytestmark = both_engines

GUILD = 10


@pytest.fixture
def service(sessions, tmp_path: Path) -> JobService:
    settings = Settings(_env_file=None, data_dir=tmp_path, max_queued_per_user=2, max_steps=100, max_size=256,
                        clip_model="easel-tiny", clip_pretrained="none")
    return JobService(settings, JobRepository(sessions), GuildService(sessions), ModerationService(sessions),
                      UploadStore(tmp_path / "uploads", max_bytes=100_000, max_pixels=1_000_000))


def request(**fields) -> JobRequest:
    values = {"technique": "imagine", "user_id": 1, "channel_id": 20, "guild_id": GUILD,
              "text": "a lighthouse --steps 10 --size 64"} | fields
    return JobRequest(**values)


def png_bytes(size=(16, 16)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "red").save(buffer, format="PNG")
    return buffer.getvalue()


async def test_a_job_is_stored_queued_with_its_position(service):
    receipt = await service.submit(request())
    assert receipt.job.status == JobStatus.QUEUED and receipt.place.position == 1
    assert receipt.job.spec["config"]["prompt"] == "a lighthouse" and receipt.job.total_steps == 10
    second = await service.submit(request(user_id=2))
    assert second.place.position == 2 and second.place.wait_seconds > 0


async def test_the_guild_limit_clamps_and_says_so(service, sessions):
    await GuildService(sessions).update(GUILD, max_steps=50)
    receipt = await service.submit(request(text="a cat --steps 80 --size 64"))
    assert receipt.job.total_steps == 50
    assert any("50" in note for note in receipt.notes)


async def test_a_person_over_the_cap_is_refused_hosts_too(service):
    await service.submit(request())
    await service.submit(request())
    with pytest.raises(UserFacingError, match="2 jobs waiting"):
        await service.submit(request())
    with pytest.raises(UserFacingError, match="2 jobs waiting"):
        await service.submit(request(is_host=True))
    assert await service.repository.count_with_status(JobStatus.QUEUED, user_id=1) == 2
    assert (await service.submit(request(user_id=9, is_host=True))).job.host_lane


async def test_a_blocked_prompt_is_refused_logged_and_not_counted(service):
    await service.moderation.add_term(GUILD, "word", "gore", added_by=5)
    with pytest.raises(UserFacingError, match="do not allow"):
        await service.submit(request(text="lots of GORE --steps 10"))
    assert await service.repository.count_with_status(JobStatus.QUEUED) == 0
    refusals = await service.moderation.recent_refusals(GUILD)
    assert refusals[0].user_id == 1 and refusals[0].matched == "gore"


async def test_attached_images_are_checked_and_stored_by_hash(service, tmp_path):
    receipt = await service.submit(request(images={"init_image": png_bytes()}))
    stored = Path(receipt.job.spec["config"]["init_image"])
    assert stored.parent == tmp_path / "uploads" and stored.suffix == ".png"
    with pytest.raises(UserFacingError):
        await service.submit(request(images={"init_image": b"not an image"}))
    with pytest.raises(UserFacingError):
        await service.submit(request(images={"init_image": png_bytes((2000, 2000))}))  # 4 MP > 1 MP


async def test_cancel_checks_who_asks(service):
    job = (await service.submit(request())).job
    with pytest.raises(UserFacingError, match="only cancel your own"):
        await service.cancel(job.id, user_id=2, host_of_guild=None)
    with pytest.raises(UserFacingError, match="only cancel your own"):
        await service.cancel(job.id, user_id=2, host_of_guild=GUILD + 1)  # a host of another server
    cancelled, message = await service.cancel(job.id, user_id=2, host_of_guild=GUILD)
    assert cancelled.status == JobStatus.CANCELLED and "Cancelled" in message
    with pytest.raises(UserFacingError, match="already finished"):
        await service.cancel(job.id, user_id=1, host_of_guild=None)
    with pytest.raises(UserFacingError, match="no job #999"):
        await service.cancel(999, user_id=1, host_of_guild=None)


async def test_reroll_keeps_the_options_and_changes_the_seed(service):
    parent = (await service.submit(request(seed=7))).job
    child = (await service.reroll(parent.id, request(technique="", text=None))).job
    assert child.parent_job_id == parent.id and child.spec["config"] == parent.spec["config"]
    assert child.seed != 7


async def test_remix_takes_new_text_and_keeps_the_rest(service):
    parent = (await service.submit(request(text="a red kite --steps 10 --size 64 --cutn 3"))).job
    child = (await service.remix(parent.id, request(technique="", text="a blue kite --steps 12"))).job
    assert child.spec["config"]["prompt"] == "a blue kite"
    assert (child.spec["config"]["steps"], child.spec["config"]["cutn"]) == (12, 3)


async def test_only_a_finished_job_can_be_continued(service):
    parent = (await service.submit(request())).job
    with pytest.raises(UserFacingError, match="no finished image"):
        await service.continue_from(parent.id, request(technique="", text=None))
    cppn = (await service.submit(request(technique="cppn", text="--size 32 --steps 2"))).job
    with pytest.raises(UserFacingError, match="cannot be continued"):
        await service.continue_from(cppn.id, request(technique="", text=None))


async def test_jobs_go_to_the_workshop_channel_when_one_is_set(service, sessions):
    await GuildService(sessions).update(GUILD, workshop_channel_id=777)
    receipt = await service.submit(request(channel_id=20))
    assert receipt.job.channel_id == 777


async def test_a_technique_without_its_weights_is_refused_with_the_fix(sessions, tmp_path):
    settings = Settings(_env_file=None, data_dir=tmp_path, clip_pretrained="laion2b_s34b_b79k", clip_model="ViT-B-32",
                        vgg_weights="none")
    service = JobService(settings, JobRepository(sessions), GuildService(sessions), ModerationService(sessions),
                         UploadStore(tmp_path / "uploads", max_bytes=100_000, max_pixels=1_000_000))
    with pytest.raises(UserFacingError, match="weights download"):
        await service.submit(request())
    assert await service.repository.count_with_status(JobStatus.QUEUED) == 0
    assert (await service.submit(request(technique="cppn", text="--size 32 --steps 2"))).job.technique == "cppn"


async def test_a_job_queued_while_the_queue_is_paused_says_so(service, sessions):
    await GuildService(sessions).update(GUILD, queue_paused=True)
    receipt = await service.submit(request())
    assert receipt.place.paused and receipt.place.position is None
    other = await service.submit(request(guild_id=GUILD + 1, user_id=2))
    assert other.place.position == 1  # a paused server's jobs do not hold back the others


@pytest.mark.parametrize("text", ["a cat --init-image /etc/hostname", "a cat --image-prompt ../../etc/passwd"])
async def test_a_file_name_typed_in_a_flag_is_refused(service, text):
    with pytest.raises(UserFacingError, match="attach"):
        await service.submit(request(text=text))
    assert await service.repository.count_with_status(JobStatus.QUEUED) == 0


async def test_simultaneous_submissions_cannot_pass_the_cap(service):
    results = await asyncio.gather(*(service.submit(request()) for _ in range(4)), return_exceptions=True)
    assert sum(isinstance(result, UserFacingError) for result in results) == 2
    assert await service.repository.count_with_status(JobStatus.QUEUED, user_id=1) == 2


# --- hardening: whose images, whose jobs, what is checked, what is stored -----------------------------


async def finished_job(service, tmp_path: Path, **fields):
    """A done job with a result file, as the worker leaves it."""
    job = (await service.submit(request(**fields))).job
    folder = tmp_path / "results" / f"job-{job.id}"
    folder.mkdir(parents=True)
    (folder / "final.png").write_bytes(png_bytes())
    await service.repository.transition(job.id, JobStatus.QUEUED, JobStatus.RUNNING)
    return await service.repository.transition(job.id, JobStatus.RUNNING, JobStatus.DONE,
                                               result_path=str(folder / "final.png"))


async def test_a_typed_path_is_refused_even_inside_the_results_and_uploads_folders(service, tmp_path):
    done = await finished_job(service, tmp_path, guild_id=GUILD + 1, user_id=5)
    upload = (await service.submit(request(user_id=6, images={"init_image": png_bytes()}))).job
    for path in (done.result_path, upload.spec["config"]["init_image"]):
        for technique, text in (("imagine", f"a cat --init-image {path}"), ("cppn", f"--target {path}")):
            with pytest.raises(UserFacingError, match="job:123"):
                await service.submit(request(user_id=7, technique=technique, text=text))
    assert await service.repository.count_with_status(JobStatus.QUEUED, user_id=7) == 0


async def test_an_earlier_result_is_an_input_only_for_those_who_may_see_it(service, tmp_path):
    mine = await finished_job(service, tmp_path, guild_id=GUILD + 1, user_id=1)
    neighbours = await finished_job(service, tmp_path, user_id=2)
    strangers = await finished_job(service, tmp_path, guild_id=GUILD + 1, user_id=3)
    someones_dm = await finished_job(service, tmp_path, guild_id=None, user_id=4)

    own = (await service.submit(request(text=f"a cat --init-image job:{mine.id}"))).job
    assert own.spec["config"]["init_image"] == mine.result_path  # my own, from any server
    same_guild = (await service.submit(request(text=f"a cat --image-prompt job:{neighbours.id}"))).job
    assert same_guild.spec["config"]["image_prompt"] == neighbours.result_path
    for other in (strangers, someones_dm):
        for guild_id in (GUILD, None):
            with pytest.raises(UserFacingError, match=f"no job #{other.id} that you can see"):
                await service.submit(request(user_id=9, guild_id=guild_id, text=f"a cat --init-image job:{other.id}"))


async def test_a_dm_job_is_its_authors_alone_and_a_guild_job_stays_in_its_guild(service):
    dm_job = (await service.submit(request(guild_id=None, user_id=1))).job
    guild_job = (await service.submit(request(user_id=1))).job
    assert (await service.visible_job(dm_job.id, 1, None)).id == dm_job.id
    assert (await service.visible_job(dm_job.id, 1, GUILD)).id == dm_job.id
    with pytest.raises(UserFacingError, match="that you can see"):
        await service.visible_job(dm_job.id, 2, None)  # another person's DM: None is not a shared guild
    assert (await service.visible_job(guild_job.id, 2, GUILD)).id == guild_job.id
    for guild_id in (None, GUILD + 1):
        with pytest.raises(UserFacingError, match="that you can see"):
            await service.visible_job(guild_job.id, 2, guild_id)
    for derive in (service.reroll, service.remix, service.continue_from):
        with pytest.raises(UserFacingError, match="that you can see"):
            await derive(dm_job.id, request(user_id=2, guild_id=None, technique="", text=None))


async def test_queue_and_about_hide_another_servers_running_job(service):
    other = (await service.submit(request(guild_id=GUILD + 1, user_id=5))).job
    await service.repository.transition(other.id, JobStatus.QUEUED, JobStatus.RUNNING)
    assert (await service.queue_view(1, GUILD)).running == []
    assert (await service.queue_status(1, GUILD))[1] == []
    assert (await service.queue_status(1, None))[1] == []
    assert [job.id for job in (await service.queue_view(6, GUILD + 1)).running] == [other.id]
    assert [job.id for job in (await service.queue_status(5, None))[1]] == [other.id]  # its author, from a DM


@pytest.mark.parametrize("text", [
    "a cat --no go''re",  # the parser removes the quotes: CLIP reads "gore"
    "a cat --no \"go\"re",
    "a cat " + "calm " * 500 + "gore",  # past the first 2000 characters
    "a quiet lake --no " + "mist, " * 1200 + "gore",  # an option takes up to 6000
])
async def test_moderation_checks_what_the_job_will_use(service, text):
    await service.moderation.add_term(GUILD, "word", "gore", added_by=5)
    with pytest.raises(UserFacingError, match="do not allow"):
        await service.submit(request(text=text))
    assert await service.repository.count_with_status(JobStatus.QUEUED) == 0


async def test_moderation_checks_each_weighted_part_of_a_prompt(service):
    await service.moderation.add_term(GUILD, "pattern", "^gore$", added_by=5)
    with pytest.raises(UserFacingError, match="do not allow"):
        await service.submit(request(text="a cat | gore:0.5 --steps 10"))


async def test_remix_text_is_moderated(service):
    parent = (await service.submit(request(text="a red kite --steps 10 --size 64"))).job
    await service.moderation.add_term(GUILD, "word", "gore", added_by=5)
    with pytest.raises(UserFacingError, match="do not allow"):
        await service.remix(parent.id, request(technique="", text="a kite of gore"))
    with pytest.raises(UserFacingError, match="do not allow"):
        await service.remix(parent.id, request(technique="", text="--no go''re"))


async def test_a_job_is_not_shown_in_a_guild_whose_list_refuses_it(service):
    job = (await service.submit(request(guild_id=None, text="gore everywhere --steps 10"))).job
    assert (await service.job_to_show(job.id, 1, GUILD)).id == job.id
    await service.moderation.add_term(GUILD, "word", "gore", added_by=5)
    with pytest.raises(UserFacingError, match="not allowed on this server"):
        await service.job_to_show(job.id, 1, GUILD)
    assert (await service.job_to_show(job.id, 1, None)).id == job.id  # in the author's DM it still shows


@pytest.mark.parametrize("text", ["a cat --steps lots", "a cat --init-image /etc/hostname", "gore --steps 10"])
async def test_a_refused_request_stores_no_upload(service, tmp_path, text):
    await service.moderation.add_term(GUILD, "word", "gore", added_by=5)
    with pytest.raises(UserFacingError):
        await service.submit(request(text=text, images={"image_prompt": png_bytes()}))
    assert not list((tmp_path / "uploads").glob("*"))


async def test_a_stored_job_is_reported_queued_whatever_fails_afterwards(service, monkeypatch):
    async def broken_place(job):
        raise ConnectionError("the database went away")

    monkeypatch.setattr(service, "place_of", broken_place)
    with pytest.raises(UserFacingError, match=r"job #\d+ is queued.*Do not send it again") as refused:
        await service.submit(request())
    assert (await service.repository.get(refused.value.job_id)).status == JobStatus.QUEUED


async def test_submit_locks_do_not_pile_up(service):
    await asyncio.gather(*(service.submit(request(user_id=user)) for user in range(20)))
    assert len(service._submitting) == 0


async def test_cancelling_a_job_no_worker_runs_says_so_and_ends_it(service):
    job = (await service.submit(request())).job
    await service.repository.transition(job.id, JobStatus.QUEUED, JobStatus.RUNNING)  # its outcome was lost
    cancelled, message = await service.cancel(job.id, user_id=1, host_of_guild=None)
    assert cancelled.status == JobStatus.CANCELLED and "no longer running it" in message


async def test_a_reroll_whose_upload_was_pruned_is_refused_with_what_to_do(service):
    parent = (await service.submit(request(images={"init_image": png_bytes()}))).job
    Path(parent.spec["config"]["init_image"]).unlink()  # noqa: ASYNC240 (test set-up)
    with pytest.raises(UserFacingError, match="no longer stored"):
        await service.reroll(parent.id, request(technique="", text=None))


async def test_receipts_of_a_burst_share_reads_of_the_queue_and_each_has_its_own_place(service):
    reads = 0
    read_queue = service.repository.queued_in_order

    async def counted_read(**options):
        nonlocal reads
        reads += 1
        return await read_queue(**options)

    service.repository.queued_in_order = counted_read
    receipts = await asyncio.gather(*(service.submit(request(user_id=100 + index)) for index in range(30)))
    assert sorted(receipt.place.position for receipt in receipts) == list(range(1, 31))
    assert reads < 30  # a handful of shared reads, not one per receipt
