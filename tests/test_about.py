"""/about's list of workers: what each runs, without naming another server's job."""

from bot.jobs.workers import WorkerSummary
from cogs.admin import worker_line
from models import Job


def running(guild_id: int | None, user_id: int = 1) -> Job:
    return Job(id=7, guild_id=guild_id, user_id=user_id, technique="imagine", progress_step=40, total_steps=200)


def test_a_worker_shows_its_job_only_where_the_job_may_be_seen():
    def line(job, user_id=2, guild_id=10):
        return worker_line(WorkerSummary("gpu-1", "cuda:0", "CLIP", job), user_id, guild_id)

    assert line(None) == "**gpu-1** · cuda:0 · idle"
    assert line(running(guild_id=10)) == "**gpu-1** · cuda:0 · running job #7 (imagine, step 40/200)"
    assert line(running(guild_id=99)) == "**gpu-1** · cuda:0 · running a job from another server"
    assert line(running(guild_id=None)) == "**gpu-1** · cuda:0 · running a job from another server"  # a DM's
    assert line(running(guild_id=None, user_id=2)).endswith("running job #7 (imagine, step 40/200)")  # their own
