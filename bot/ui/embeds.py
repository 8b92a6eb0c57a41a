"""How jobs look on Discord: texts and embeds, built from job rows. No I/O here."""

from __future__ import annotations

import shlex

import discord

from bot.jobs.service import Place
from bot.jobs.spec import JobSpec
from bot.timestamps import discord_timestamp
from bot.ui.fit import fit, fit_embed
from models import Job, JobStatus

STATUS_COLOURS = {
    JobStatus.QUEUED: discord.Colour.light_grey(),
    JobStatus.RUNNING: discord.Colour.blurple(),
    JobStatus.DONE: discord.Colour.green(),
    JobStatus.FAILED: discord.Colour.red(),
    JobStatus.CANCELLED: discord.Colour.dark_grey(),
}


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def progress_bar(step: int, total: int, width: int = 20) -> str:
    fraction = 0.0 if total <= 0 else min(1.0, step / total)
    filled = round(fraction * width)
    return f"`{'█' * filled}{'░' * (width - filled)}` {fraction:.0%}"


def place_text(place: Place) -> str:
    if place.paused:
        return "Waiting: the hosts paused this server's queue; it starts when they resume it."
    if place.position is None:
        return "Starting now."
    if place.position == 1 and place.wait_seconds < 1:
        when = "next"
    elif place.starts_at is not None:  # a Discord timestamp: every member's client counts it down by itself
        when = discord_timestamp(place.starts_at, "R")
    else:
        when = f"in about {format_duration(place.wait_seconds)}"
    return f"Waiting in the queue: position {place.position}, starts {when}."


def status_embed(job: Job, *, text: str, preview_file: str | None = None) -> discord.Embed:
    embed = discord.Embed(title=f"Job #{job.id} · {job.technique}", description=text,
                          colour=STATUS_COLOURS[job.status])
    embed.add_field(name="Prompt" if job.spec["config"].get("prompt") else "Job", value=job.title, inline=False)
    if preview_file:
        embed.set_image(url=f"attachment://{preview_file}")
    embed.set_footer(text=f"seed {job.seed}")
    return fit_embed(embed)


def running_text(step: int, total: int, eta_seconds: float | None, loss: float | None) -> str:
    lines = [progress_bar(step, total), f"Step {step}/{total}"]
    if eta_seconds is not None:
        lines[-1] += f" · about {format_duration(eta_seconds)} left"
    if loss is not None:
        lines.append(f"loss {loss:.4f}")
    return "\n".join(lines)


def result_embed(job: Job, image_file: str) -> discord.Embed:
    spec = JobSpec.from_dict(job.spec)
    metrics = job.metrics or {}
    embed = discord.Embed(title=f"Job #{job.id} · {job.title}", colour=STATUS_COLOURS[job.status])
    embed.set_image(url=f"attachment://{image_file}")
    embed.add_field(name="Parameters", value=spec.describe(), inline=False)
    embed.add_field(name="Seed", value=str(job.seed))
    if metrics.get("seconds") is not None:
        embed.add_field(name="Time", value=f"{format_duration(metrics['seconds'])} · {metrics.get('steps_done')} steps")
    if metrics.get("final_loss") is not None:
        embed.add_field(name="Final loss", value=f"{metrics['final_loss']:.4f}")
    notes = metrics.get("notes") or []
    if notes:
        embed.add_field(name="Note", value="\n".join(notes), inline=False)
    return fit_embed(embed)


def parameters_text(job: Job) -> str:
    """The job's parameters and the `render` command that makes the same image again."""
    spec = JobSpec.from_dict(job.spec)
    config = job.spec["config"]
    image_fields = list(spec.image_paths())
    flags = " ".join(
        f"--{name.replace('_', '-')} {shlex.quote(str(value))}"
        for name, value in config.items()
        if value is not None and name != "prompt" and name not in image_fields
    )
    flags += f" --seed {spec.seed}"
    if config.get("prompt"):
        command = f"python -m bot render {spec.technique} {shlex.quote(config['prompt'] + ' ' + flags)}"
    else:
        command = f"python -m bot render {spec.technique} {flags}"
    if image_fields:
        command += "".join(f" --{name.replace('_', '-')} your-{name.replace('_', '-')}.png" for name in image_fields)
    text = (f"**Job #{job.id}** · {spec.describe()}\n"
            f"Make the same image again (same seed, weights and device):\n```\n{command}\n```")
    return fit(text)


def running_jobs_text(jobs: list[Job]) -> str:
    """`job #3 (imagine)`, or `jobs #3 (imagine), #5 (compare)` when a batch runs several."""
    listed = ", ".join(f"#{job.id} ({job.technique})" for job in jobs)
    return f"job{'s' if len(jobs) > 1 else ''} {listed}"
