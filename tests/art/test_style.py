import pytest
from PIL import Image

from bot.art.technique import RunContext
from bot.art.techniques.style import TECHNIQUE, StyleConfig


@pytest.fixture
def images(tmp_path):
    Image.radial_gradient("L").convert("RGB").resize((64, 48)).save(tmp_path / "content.png")
    Image.effect_noise((40, 40), 60).convert("RGB").save(tmp_path / "style.jpg")
    return str(tmp_path / "content.png"), str(tmp_path / "style.jpg")


def run(vgg_store, config, cancel_after=None):
    calls, checks = [], []

    def should_cancel():
        checks.append(1)
        return cancel_after is not None and len(checks) > cancel_after

    ctx = RunContext(device=vgg_store.device, models=vgg_store, progress_every=2, should_cancel=should_cancel,
                     on_progress=lambda step, total, preview, metrics: calls.append((step, metrics)))
    return TECHNIQUE.run(config, 1, ctx), calls


def test_style_transfer_steps(vgg_store, images):
    config = StyleConfig(content=images[0], style=images[1], steps=3, size=64)
    result, calls = run(vgg_store, config)
    assert result.image.size == (64, 48)  # the content's aspect, longest side `size`
    assert [step for step, _ in calls] == [2, 3] and len(result.losses) == 3 and len(result.frames) == 2
    assert result.losses[-1] < result.losses[0]
    assert any("random" in note for note in result.notes)
    again, _ = run(vgg_store, config)
    assert again.image.tobytes() == result.image.tobytes()


def test_cancel_stops_within_one_step(vgg_store, images):
    config = StyleConfig(content=images[0], style=images[1], steps=10, size=48)
    result, calls = run(vgg_store, config, cancel_after=1)
    assert result.cancelled and result.steps_done == 1 and calls == []
    assert result.image.size == (48, 36)
