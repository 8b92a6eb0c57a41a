import pytest
import torch
from PIL import Image, ImageDraw

from bot.art.technique import RunContext
from bot.art.techniques.nca import TECHNIQUE, NcaConfig

CPU = torch.device("cpu")


@pytest.fixture
def target(tmp_path):
    image = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((6, 6, 26, 26), fill=(230, 80, 20, 255))
    image.save(tmp_path / "emoji.png")
    return str(tmp_path / "emoji.png")


def tiny(target, **changes):
    options = dict(target=target, steps=4, size=40, grid=16, rollout=4, pool_size=8, batch_size=2,
                   growth_frames=5)
    return NcaConfig(**options | changes)


def run(config, seed=1, cancel_after=None):
    calls, checks = [], []

    def should_cancel():
        checks.append(1)
        return cancel_after is not None and len(checks) > cancel_after

    ctx = RunContext(device=CPU, models=None, progress_every=2, should_cancel=should_cancel,
                     on_progress=lambda step, total, preview, metrics: calls.append((step, metrics)))
    return TECHNIQUE.run(config, seed, ctx), calls


def test_trains_and_grows(target):
    result, calls = run(tiny(target))
    assert result.image.size == (40, 40) and result.steps_done == 4 and len(result.losses) == 4
    assert [step for step, _ in calls] == [2, 4] and "loss" in calls[0][1]
    assert len(result.frames) == 5 and len({f.size for f in result.frames}) == 1
    again, _ = run(tiny(target))
    assert again.image.tobytes() == result.image.tobytes() and again.losses == result.losses


def test_cancel_stops_within_one_step(target):
    result, calls = run(tiny(target, steps=10), cancel_after=3)
    assert result.cancelled and result.steps_done == 3 and [step for step, _ in calls] == [2]
    assert result.image.size == (40, 40) and result.frames  # the partly trained automaton still grows


def test_rgb_target_and_config_checks(tmp_path):
    Image.new("RGB", (20, 20), (0, 90, 200)).save(tmp_path / "plain.jpg")
    result, _ = run(tiny(str(tmp_path / "plain.jpg"), steps=1))
    assert result.image.size == (40, 40)
    with pytest.raises(ValueError, match="target"):
        NcaConfig()


def test_training_memory_is_bounded(target):
    NcaConfig(target=target)  # the defaults
    NcaConfig(target=target, grid=96)  # 4x the defaults' cells: at the limit
    with pytest.raises(ValueError, match=r"lower --batch-size, --grid or --rollout") as error:
        NcaConfig(target=target, grid=128, rollout=256, batch_size=64)
    assert "batch-size 64 x grid 128^2 x rollout up to 384" in str(error.value)
    with pytest.raises(ValueError, match="GB of memory"):
        NcaConfig(target=target, grid=97)
