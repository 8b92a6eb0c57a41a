import dataclasses

import pytest
import torch
from PIL import Image

from bot.art.imagefiles import ImageRejected
from bot.art.technique import RunContext
from bot.art.techniques.imagine import TECHNIQUE, ImagineConfig

CPU = torch.device("cpu")


def tiny_config(**changes) -> ImagineConfig:
    defaults = {"prompt": "a lighthouse | stormy sea:0.5", "steps": 6, "size": 64, "cutn": 4}
    return ImagineConfig(**{**defaults, **changes})


def run(clip_store, config, seed=0, **context):
    return TECHNIQUE.run(config, seed, RunContext(device=CPU, models=clip_store, progress_every=2, **context))


def test_runs_and_reports_progress(clip_store):
    progress = []
    result = run(clip_store, tiny_config(), on_progress=lambda step, total, preview, metrics: progress.append(
        (step, total, preview.size, set(metrics))))
    assert result.image.size == (64, 64)
    assert [p[0] for p in progress] == [2, 4, 6]
    assert all(p[1] == 6 and p[2] == (64, 64) and p[3] == {"loss"} for p in progress)
    assert len(result.frames) == 3 and len(result.losses) == 6 and result.steps_done == 6
    assert not result.cancelled and "CLIP weights are random" in result.notes


def test_progress_at_the_last_step_when_it_is_not_a_multiple(clip_store):
    progress = []
    run(clip_store, tiny_config(steps=5), on_progress=lambda step, *rest: progress.append(step))
    assert progress == [2, 4, 5]


def test_cancel_stops_within_one_step(clip_store):
    checks = []

    def should_cancel() -> bool:
        checks.append(1)
        return len(checks) > 3  # cancel before step 4

    result = run(clip_store, tiny_config(), should_cancel=should_cancel)
    assert result.cancelled and result.steps_done == 3 and len(result.losses) == 3
    assert result.image.size == (64, 64)


def test_same_seed_same_image(clip_store):
    first, second = run(clip_store, tiny_config(), seed=7), run(clip_store, tiny_config(), seed=7)
    assert first.image.tobytes() == second.image.tobytes()
    assert first.losses == second.losses
    assert run(clip_store, tiny_config(), seed=8).image.tobytes() != first.image.tobytes()


@pytest.mark.parametrize("kind", ["stack", "pixels", "fourier"])
def test_each_parameterization(clip_store, kind):
    result = run(clip_store, tiny_config(param=kind, steps=2))
    assert result.image.size == (64, 64) and len(result.losses) == 2


def test_negative_prompts_init_image_and_image_prompt(clip_store, tmp_path):
    picture = tmp_path / "init.png"
    Image.new("RGB", (40, 30), (200, 30, 30)).save(picture)
    config = tiny_config(negative="blurry, text | watermark", init_image=str(picture), init_strength=1.0,
                         image_prompt=str(picture), image_prompt_weight=0.5, steps=1)
    assert [p.weight for p in config.text_prompts()] == [1.0, 0.5, -1.0, -1.0, -1.0]
    result = run(clip_store, config)
    red, green, _ = result.image.resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    assert red > 150 and green < 80  # one small step from a red init image is still red


@pytest.mark.parametrize("changes, message", [
    ({"prompt": "text:-1"}, "positive weight"),
    ({"steps": 0}, "steps must be between 1 and 5000"),
    ({"size": 4096}, "size must be between 32 and 2048"),
    ({"param": "voxels"}, "param must be one of stack, pixels, fourier"),
    ({"init_strength": 1.5}, r"init-strength must be between 0 and 1 \(you gave 1.5\)"),
])
def test_bad_configs_explain_themselves(changes, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**changes)


def test_prompt_is_required_and_fields_carry_field_metadata():
    with pytest.raises(TypeError):
        ImagineConfig()
    meta = {f.name: f.metadata for f in dataclasses.fields(ImagineConfig)}
    assert meta["negative"]["flag"] == "no"
    assert meta["steps"]["limit"] == "steps" and meta["size"]["limit"] == "size"


def test_missing_init_image_file_is_a_clear_error(clip_store, tmp_path):
    with pytest.raises(ImageRejected, match=r"missing\.png"):
        run(clip_store, tiny_config(init_image=str(tmp_path / "missing.png")))
