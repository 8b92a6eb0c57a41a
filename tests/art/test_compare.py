"""/compare: the variants of one prompt step together, each as its imagine job would alone."""

import dataclasses

import pytest
import torch

import bot.art.clip_guided as clip_guided
import bot.art.techniques.compare as compare_module
from bot.art.clip_guided import run_alone
from bot.art.contact_sheet import GAP
from bot.art.technique import RunContext
from bot.art.techniques import NEEDS_WEIGHTS, TECHNIQUES
from bot.art.techniques.compare import SEED_MAX, TECHNIQUE, CompareConfig
from bot.art.techniques.imagine import TECHNIQUE as IMAGINE

CPU = torch.device("cpu")
TOLERANCE = 1e-4  # as in test_clip_guided: a larger batch rounds a little differently


def tiny(what: str, values: str | None = None, **changes) -> CompareConfig:
    return CompareConfig(**{"prompt": "a lighthouse | stormy sea:0.5", "what": what, "values": values,
                            "steps": 3, "size": 32, "cutn": 4, **changes})


def context(clip_store, **options) -> RunContext:
    return RunContext(device=CPU, models=clip_store, progress_every=2, **options)


@pytest.fixture
def batches(monkeypatch) -> list[int]:
    """How many images each `step_together` call moved."""
    sizes = []
    real = clip_guided.step_together

    def counting(images, clip, device):
        sizes.append(len(images))
        real(images, clip, device)

    monkeypatch.setattr(clip_guided, "step_together", counting)
    return sizes


def test_it_is_registered_as_a_clip_technique():
    assert TECHNIQUES["compare"] is TECHNIQUE and NEEDS_WEIGHTS["compare"] == "clip"


@pytest.mark.parametrize(("what", "values", "expected"), [
    ("param", None, ["stack", "pixels", "fourier"]),
    ("lr", None, [0.01, 0.05, 0.2]),
    ("cutn", "4, 8", [4, 8]),
    ("tv_weight", "0 0.5 1 2", [0.0, 0.5, 1.0, 2.0]),
])
def test_the_variants_differ_only_in_the_compared_setting(what, values, expected):
    config = tiny(what, values)
    variants = config.variants(seed=7)
    assert [getattr(variant.config, what) for variant in variants] == expected
    assert {variant.seed for variant in variants} == {7}  # only the setting differs, not the random stream
    base = dataclasses.asdict(config.base())
    for variant in variants:
        differences = {name for name, value in dataclasses.asdict(variant.config).items() if base[name] != value}
        assert differences <= {what}
    assert variants[-1].label == f"{what.replace('_', '-')} {expected[-1]:g}" if what != "param" else "param fourier"


def test_what_seed_compares_the_given_seeds_or_the_jobs_seed_and_the_next_ones():
    given = tiny("seed", "11, 12").variants(seed=7)
    assert [(variant.seed, variant.label) for variant in given] == [(11, "seed 11"), (12, "seed 12")]
    assert all(variant.config == tiny("seed").base() for variant in given)
    assert [variant.seed for variant in tiny("seed").variants(seed=7)] == [7, 8, 9]
    assert [variant.seed for variant in tiny("seed").variants(seed=SEED_MAX)] == [SEED_MAX, 0, 1]


@pytest.mark.parametrize(("what", "values"), [("cutn", "4, 8"), ("param", "pixels, fourier"), ("seed", "11, 12")])
def test_each_variant_is_the_imagine_job_it_stands_for_and_they_step_as_one_batch(clip_store, batches, what,
                                                                                  values):
    config = tiny(what, values)
    job = TECHNIQUE.start(config, 5, context(clip_store))
    run_alone(job, context(clip_store))
    assert batches == [2] * config.steps  # every step moved both variants in one step_together
    alone = []
    for variant in job.variants:
        imagine_job = IMAGINE.start(variant.config, variant.seed, context(clip_store))
        run_alone(imagine_job, context(clip_store))
        alone.append(imagine_job.image.current())
    for image, expected in zip(job.images, alone, strict=True):
        torch.testing.assert_close(image.current(), expected, atol=TOLERANCE, rtol=0)
    assert not torch.allclose(job.images[0].current(), job.images[1].current())  # the setting made a difference


def test_in_the_workers_batch_beside_an_imagine_job_each_gives_what_it_gives_alone(clip_store):
    """The worker steps the images of every job in its batch in one step_together, then each job's after_step."""
    config, imagine_config = tiny("param", "stack, fourier"), dataclasses.replace(tiny("lr").base(), cutn=3)
    compare_job, imagine_job = TECHNIQUE.start(config, 2, context(clip_store)), IMAGINE.start(
        imagine_config, 4, context(clip_store))
    while not (compare_job.done and imagine_job.done):
        clip_guided.step_together([*compare_job.images, *imagine_job.images], clip_store.clip(), CPU)
        compare_job.after_step()
        imagine_job.after_step()
    compare_alone, imagine_alone = TECHNIQUE.start(config, 2, context(clip_store)), IMAGINE.start(
        imagine_config, 4, context(clip_store))
    run_alone(compare_alone, context(clip_store))
    run_alone(imagine_alone, context(clip_store))
    for batched, alone in zip([*compare_job.images, imagine_job.image], [*compare_alone.images, imagine_alone.image],
                              strict=True):
        torch.testing.assert_close(batched.current(), alone.current(), atol=TOLERANCE, rtol=0)
    assert len(compare_job.result(cancelled=False).frames) == 2  # its own side-by-side reports, at steps 2 and 3


def test_progress_shows_the_variants_side_by_side(clip_store):
    reports = []
    result = TECHNIQUE.run(tiny("lr"), 3, context(clip_store, on_progress=lambda step, total, preview, metrics:
                                                  reports.append((step, total, preview.size, metrics["loss"]))))
    assert [(step, total) for step, total, _, _ in reports] == [(2, 3), (3, 3)]
    side = compare_module.STATUS_TILE_SIDE
    assert all(size[0] == 3 * (side + GAP) + GAP for _, _, size, _ in reports)  # three tiles in a row
    assert [frame.size for frame in result.frames] == [size for _, _, size, _ in reports]
    assert reports[-1][3] == pytest.approx(result.losses[-1])  # the variants' mean loss
    assert len(result.losses) == result.steps_done == 3 and not result.cancelled


def test_the_sheet_has_one_tile_per_variant_labelled_with_its_recipe(clip_store, monkeypatch):
    drawn = []
    real = compare_module.captioned_grid

    def recording(pictures, **options):
        drawn.append(([caption for _, caption in pictures], options.get("title")))
        return real(pictures, **options)

    monkeypatch.setattr(compare_module, "captioned_grid", recording)
    result = TECHNIQUE.run(tiny("tv_weight", "0, 0.5", negative="text"), 9, context(clip_store))
    captions, title = drawn[-1]
    assert [caption.split(" · ")[0] for caption in captions] == ["tv-weight 0", "tv-weight 0.5"]
    assert all(" · loss " in caption for caption in captions)
    assert title.splitlines() == ["a lighthouse | stormy sea:0.5", "without: text",
                                  "steps 3 · size 32 · param stack · cutn 4 · lr 0.05 · seed 9"]
    side = compare_module.SHEET_TILE_SIDES[0]  # a 32-pixel image gets the smallest tile
    assert result.image.width == 2 * (side + GAP) + GAP
    assert "CLIP weights are random" in result.notes


def test_a_cancelled_compare_still_gives_its_sheet(clip_store):
    checks = []
    result = TECHNIQUE.run(tiny("cutn", "4, 8", steps=5), 1,
                           context(clip_store, should_cancel=lambda: checks.append(1) or len(checks) > 2))
    assert result.cancelled and result.steps_done == 2 and len(result.losses) == 2
    assert result.image.width > 0


def test_the_memory_estimate_and_the_steps_limit_count_every_variant(clip_store):
    config = tiny("cutn", "4, 8, 16")
    each = [IMAGINE.estimated_bytes(variant.config, context(clip_store)) for variant in config.variants(seed=0)]
    assert TECHNIQUE.estimated_bytes(config, context(clip_store)) == sum(each)
    assert config.times_counted("steps") == 3 and config.times_counted("size") == 1
    assert tiny("seed").times_counted("steps") == 3


@pytest.mark.parametrize(("what", "values", "message"), [
    ("lr", "0.05", r"--values takes 2 to 4 values of lr to compare, separated by commas, e.g. `0.01, 0.05, 0.2` "
                   r"\(you gave 1\)"),
    ("seed", "1 2 3 4 5", r"takes 2 to 4 values of seed .* \(you gave 5\)"),
    ("lr", "0.05, 5", r"--values: lr must be between 0.0001 and 1 \(you gave 5\)"),
    ("tv_weight", "0, -1", r"--values: tv-weight must be between 0 and 10 \(you gave -1\)"),
    ("cutn", "4, 200", r"--values: cutn must be between 1 and 128 \(you gave 200\)"),
    ("cutn", "4, 8.5", r"--values for cutn must be whole numbers, separated by commas \(you gave '4, 8.5'\)"),
    ("lr", "0.1, fast", r"--values for lr must be numbers"),
    ("param", "stack, voxels", r"--values: param must be one of stack, pixels, fourier \(you gave 'voxels'\)"),
    ("param", "stack, STACK", r"--values has param stack twice; give each value once"),
    ("seed", "1, -3", rf"--values: seeds must be between 0 and {SEED_MAX}"),
    ("size", None, r"what must be one of param, lr, cutn, tv_weight, seed \(you gave 'size'\)"),
])
def test_bad_values_are_refused_with_what_to_fix(what, values, message):
    with pytest.raises(ValueError, match=message):
        tiny(what, values)


def test_a_bad_prompt_is_refused_as_imagine_refuses_it():
    with pytest.raises(ValueError, match="positive weight"):
        tiny("lr", prompt="text:-1")
