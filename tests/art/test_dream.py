import pytest
from PIL import Image

from bot.art.technique import RunContext
from bot.art.techniques.dream import TECHNIQUE, DreamConfig, octave_sizes, steps_per_octave


@pytest.fixture
def image(tmp_path):
    Image.radial_gradient("L").convert("RGB").resize((64, 48)).save(tmp_path / "photo.png")
    return str(tmp_path / "photo.png")


def run(vgg_store, config, seed=1, cancel_after=None):
    calls, checks = [], []

    def should_cancel():
        checks.append(1)
        return cancel_after is not None and len(checks) > cancel_after

    ctx = RunContext(device=vgg_store.device, models=vgg_store, progress_every=2, should_cancel=should_cancel,
                     on_progress=lambda step, total, preview, metrics: calls.append((step, preview.size)))
    return TECHNIQUE.run(config, seed, ctx), calls


def test_dreams_over_octaves(vgg_store, image):
    config = DreamConfig(image=image, layer="relu3_3", octaves=2, octave_scale=1.5, steps=5, size=64,
                         jitter=4)
    result, calls = run(vgg_store, config)
    assert result.image.size == (64, 48) and result.steps_done == 5 and len(result.losses) == 5
    assert [step for step, _ in calls] == [2, 4, 5]
    assert {size for _, size in calls} == {(64, 48)}  # previews share one size across octaves
    again, _ = run(vgg_store, config)
    assert again.image.tobytes() == result.image.tobytes()
    other, _ = run(vgg_store, config, seed=2)
    assert other.image.tobytes() != result.image.tobytes()  # the jitter follows the seed


def test_cancel_in_an_early_octave_still_gives_full_size(vgg_store, image):
    config = DreamConfig(image=image, octaves=2, octave_scale=1.4, steps=8, size=64)
    result, calls = run(vgg_store, config, cancel_after=3)
    assert result.cancelled and result.steps_done == 3 and [step for step, _ in calls] == [2]
    assert result.image.size == (64, 48)


def test_octave_plan():
    assert octave_sizes(100, 200, 3, 2.0) == [(25, 50), (50, 100), (100, 200)][1:]  # 25 px is too small
    assert steps_per_octave(10, 3) == [3, 3, 4]
