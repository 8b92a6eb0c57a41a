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
