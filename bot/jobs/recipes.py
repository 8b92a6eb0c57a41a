"""Recipes: a result PNG carries its job (the `easel` text chunk), so the file alone can make it again.

`read_recipe` takes the bytes of a PNG someone hands in (an attachment, a file for the render CLI)
and treats them as hostile: the size is checked first, only the PNG's text chunks are read (no pixel
is decoded), and the job JSON goes back through the same parser as a typed command, so an unknown
technique, an unknown field, a value of the wrong type or out of range is refused with a message
for the person who sent it.

Input images are recorded by file name in a bot job's recipe, and by the path they had in a local
render's (the render CLI uses one that still exists on its machine); they are only ever shown by
file name. The bot queues a recipe again with the images of the job that made it, if the person may
see that job (`JobService.run_recipe`); the render CLI needs them given again: `recipe_options` gives
the options without them and the names to ask for.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from bot.art.imagefiles import ImageRejected, read_png_text
from bot.jobs.parser import SEED_MAX, Limits, SpecError, parse_job
from bot.jobs.spec import JobSpec, file_name

RECIPE_KEY = "easel"
MAX_RECIPE_CHARS = 64 * 1024  # the job JSON; a real one is well under 2 KB
MAX_TEXT_CHARS = 6000  # any one text in it (Discord's own cap on an option's text)
MAX_DEVICE_CHARS = 40
RECIPE_KEYS = {"technique", "seed", "config", "device", "job"}
# Only the fields' own ranges: a server's smaller limits apply when the recipe is queued again.
RECIPE_LIMITS = Limits(max_steps=2**31, max_size=2**31, clamp=False)


class RecipeError(ValueError):
    """A file that is not a usable Easel recipe; the message says why, for the person who sent it."""


@dataclass(frozen=True)
class Recipe:
    spec: JobSpec  # image fields hold the paths recorded where the job ran
    job_id: int | None  # the job's number in the bot that made it, if it was a bot job
    device: str | None  # "cuda", "cpu", ...: the same seed gives the same image on the same kind of device


def read_recipe(data: bytes, *, max_bytes: int) -> Recipe:
    """The recipe in an untrusted PNG's bytes, fully validated; RecipeError otherwise."""
    try:
        texts = read_png_text(data, max_bytes=max_bytes)
    except ImageRejected as error:
        raise RecipeError(f"This file has no Easel recipe: {error}") from None
    text = texts.get(RECIPE_KEY)
    if text is None:
        raise RecipeError(
            "This PNG has no Easel recipe: it was not made by Easel, or it was re-encoded on the way "
            "(a screenshot, a preview, an editor). Use the original PNG file Easel posted."
        )
    if len(text) > MAX_RECIPE_CHARS:
        raise RecipeError("This PNG's Easel recipe is far too long to be real; it was not made by Easel.")
    try:
        job = json.loads(text)
    except (ValueError, RecursionError):
        raise RecipeError("This PNG's Easel recipe is damaged: it is not valid JSON.") from None
    technique, config, seed, job_id, device = _checked_shape(job)
    try:
        parsed = parse_job(technique, config, limits=RECIPE_LIMITS, seed=seed)
    except SpecError as error:
        raise RecipeError(f"This PNG's Easel recipe cannot be used: {error}") from None
    _check_types(parsed.spec, config)
    return Recipe(spec=parsed.spec, job_id=job_id, device=device)


def _bad(what: str) -> RecipeError:
    return RecipeError(f"This PNG's Easel recipe is damaged: {what}.")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _checked_shape(job: object) -> tuple[str, dict[str, Any], int, int | None, str | None]:
    """The recipe JSON's parts, each of the right kind; the values themselves are the parser's to check."""
    if not isinstance(job, dict):
        raise _bad("it is not a job")
    unknown = sorted(str(key)[:40] for key in set(job) - RECIPE_KEYS)
    if unknown:
        raise _bad(f"unknown key {', '.join(map(repr, unknown))} (was it made by a newer Easel?)")
    missing = sorted({"technique", "seed", "config"} - set(job))
    if missing:
        raise _bad(f"it has no {', '.join(missing)}")
    technique, seed, config = job["technique"], job["seed"], job["config"]
    if not isinstance(technique, str) or len(technique) > 40:
        raise _bad("its technique is not a technique name")
    if not _is_int(seed) or not 0 <= seed <= SEED_MAX:
        raise _bad(f"its seed must be a whole number from 0 to {SEED_MAX}")
    if not isinstance(config, dict):
        raise _bad("its config is not a set of options")
    for name, value in config.items():
        if len(name) > 40:
            raise _bad("an option name is far too long")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise _bad(f"option {name!r} is not a single value")
        if isinstance(value, str) and len(value) > MAX_TEXT_CHARS:
            raise _bad(f"option {name!r} is {len(value):,} characters long; the limit is {MAX_TEXT_CHARS:,}")
    job_id = job.get("job")
    if job_id is not None and (not _is_int(job_id) or not 0 < job_id < 2**63):
        raise _bad("its job number is not a number")
    device = job.get("device")
    if device is not None and (not isinstance(device, str) or not device.isprintable()
                               or len(device) > MAX_DEVICE_CHARS):
        raise _bad("its device is not a device name")
    return technique, config, seed, job_id, device


def _check_types(spec: JobSpec, config: dict[str, Any]) -> None:
    """Each recorded value was already of its field's type: the parser converts text ("12" -> 12),
    which a command needs but a recipe written by Easel never does. Options are named by field name
    only (the parser also takes flag names, and `seed`)."""
    names = {field.name for field in dataclasses.fields(spec.config)}
    for name, given in config.items():
        if name not in names:
            raise _bad(f"{spec.technique} has no option {name!r}")
        value = getattr(spec.config, name)
        if isinstance(value, bool):
            ok = isinstance(given, bool)
        elif isinstance(value, int):
            ok = _is_int(given)
        elif isinstance(value, float):
            ok = isinstance(given, int | float) and not isinstance(given, bool)
        elif isinstance(value, str):
            ok = isinstance(given, str)
        else:
            ok = given is None
        if not ok or value != given:
            raise _bad(f"option {name!r} has a value of the wrong type or form ({str(given)[:40]!r})")


def recipe_text(recipe: Recipe) -> str:
    """A short description for Discord: technique, seed and parameters; input images by name only,
    with a word that they must be attached again."""
    lines = [recipe.spec.describe()]
    made = []
    if recipe.job_id is not None:
        made.append(f"job #{recipe.job_id}")
    if recipe.device:
        made.append(f"on {recipe.device}")
    if made:
        lines.append(f"Made as {' '.join(made)}.")
    images = recipe_options(recipe)[1]
    if images:
        named = ", ".join(f"{name.replace('_', '-')} ({file!r})" for name, file in images.items())
        lines.append(f"Input images, to attach again: {named}.")
    return "\n".join(lines)


def recipe_options(recipe: Recipe) -> tuple[dict[str, object], dict[str, str]]:
    """(the options to submit the recipe again, seed included, without its image fields;
    the image fields it needs, field name -> file name as recorded). Options are keyed by field name,
    as `parse_job` takes them; its technique is `recipe.spec.technique`."""
    images = {name: file_name(path) for name, path in recipe.spec.image_paths().items()}
    options: dict[str, object] = {
        field.name: getattr(recipe.spec.config, field.name)
        for field in dataclasses.fields(recipe.spec.config)
        if field.name not in images and getattr(recipe.spec.config, field.name) is not None
    }
    options["seed"] = recipe.spec.seed
    return options, images
