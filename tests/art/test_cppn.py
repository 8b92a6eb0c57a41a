import torch
from PIL import Image

from bot.art.technique import RunContext
from bot.art.techniques.cppn import TECHNIQUE, CppnConfig

CPU = torch.device("cpu")


def run(config, seed=1, cancel_after=None, progress_every=2):
    calls, checks = [], []

    def should_cancel():
        checks.append(1)
        return cancel_after is not None and len(checks) > cancel_after

    ctx = RunContext(device=CPU, models=None, progress_every=progress_every, should_cancel=should_cancel,
                     on_progress=lambda step, total, preview, metrics: calls.append((step, total, metrics)))
    return TECHNIQUE.run(config, seed, ctx), calls


def test_pattern_morphs_and_loops_back():
    result, calls = run(CppnConfig(size=48, steps=5, layers=3, width=12))
    assert result.image.size == (48, 48) and result.steps_done == 5 and not result.cancelled
    assert [c[0] for c in calls] == [2, 4, 5] and all(c[1] == 5 for c in calls)
    assert len(result.frames) == 3 and result.frames[0].tobytes() != result.frames[1].tobytes()
    same_seed, _ = run(CppnConfig(size=48, steps=5, layers=3, width=12))
    assert same_seed.image.tobytes() == result.image.tobytes()
    other_seed, _ = run(CppnConfig(size=48, steps=5, layers=3, width=12), seed=2)
    assert other_seed.image.tobytes() != result.image.tobytes()


def test_fits_a_target(tmp_path):
    Image.linear_gradient("L").convert("RGB").save(tmp_path / "target.png")
    target = str(tmp_path / "target.png")
    config = CppnConfig(size=32, steps=6, layers=2, width=9, colour="hsv", target=target)
    result, calls = run(config, progress_every=3)
    assert result.image.size == (32, 32) and len(result.losses) == 6
    assert [c[0] for c in calls] == [3, 6] and "loss" in calls[-1][2]
    again, _ = run(config, progress_every=3)
    assert again.image.tobytes() == result.image.tobytes() and again.losses == result.losses


def test_cancel_stops_within_one_step():
    result, calls = run(CppnConfig(size=32, steps=10, layers=2, width=6, colour="grey"), cancel_after=3)
    assert result.cancelled and result.steps_done == 3 and [c[0] for c in calls] == [2]
    assert result.image.size == (32, 32)
