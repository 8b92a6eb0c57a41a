"""Several images stepping together give what each gives alone; running out of memory moves nobody."""

import dataclasses

import pytest
import torch

from bot.art.clip_guided import GuideConfig, GuidedImage, bytes_per_cutout, estimated_bytes, step_together
from bot.art.techniques.imagine import ImagineConfig, guide_config, prompt_targets

CPU = torch.device("cpu")
# A larger matrix multiply rounds differently; over a few Adam steps that stays far below a pixel level.
TOLERANCE = 1e-4


def guided(clip, seed: int, **changes) -> GuidedImage:
    config = ImagineConfig(**{"prompt": "a lighthouse | stormy sea:0.5", "steps": 5, "size": 64, "cutn": 4,
                              **changes})
    return GuidedImage(guide_config(config), prompt_targets(config, clip, CPU), seed, CPU)


def run_steps(images, clip, steps: int) -> None:
    for _ in range(steps):
        step_together(images, clip, CPU)


def test_a_batch_gives_each_image_what_it_gets_alone(clip_store):
    clip = clip_store.clip()
    alone_a, alone_b = guided(clip, 1), guided(clip, 2, size=48, param="fourier", cutn=6, prompt="a red fox")
    run_steps([alone_a], clip, 5)
    run_steps([alone_b], clip, 5)
    batched_a, batched_b = guided(clip, 1), guided(clip, 2, size=48, param="fourier", cutn=6, prompt="a red fox")
    run_steps([batched_a, batched_b], clip, 5)

    for alone, batched in ((alone_a, batched_a), (alone_b, batched_b)):
        assert batched.step == alone.step == 5 and batched.done
        torch.testing.assert_close(batched.current(), alone.current(), atol=TOLERANCE, rtol=0)
        torch.testing.assert_close(torch.stack(batched.losses), torch.stack(alone.losses), atol=TOLERANCE, rtol=0)
    assert not torch.allclose(batched_a.current()[..., :48, :48], batched_b.current())  # they did not mix


def test_images_join_and_leave_between_steps(clip_store):
    clip = clip_store.clip()
    alone = guided(clip, 3)
    run_steps([alone], clip, 5)

    first, joiner = guided(clip, 3), guided(clip, 4, steps=2)
    run_steps([first], clip, 2)
    run_steps([first, joiner], clip, 2)  # the joiner is done here and leaves
    assert joiner.done and not first.done
    run_steps([first], clip, 1)
    torch.testing.assert_close(first.current(), alone.current(), atol=TOLERANCE, rtol=0)


class RunsOutOfMemory(torch.nn.Module):
    """CLIP's image tower as a GPU with room for at most `max_cutouts` cutouts at once would run it."""

    def __init__(self, model: torch.nn.Module, max_cutouts: int) -> None:
        super().__init__()
        self.model, self.visual, self.max_cutouts = model, model.visual, max_cutouts

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model.encode_text(tokens)

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        if len(pixels) > self.max_cutouts:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.model.encode_image(pixels)


def test_running_out_of_memory_moves_no_image_and_the_step_can_be_retried(clip_store):
    clip = clip_store.clip()
    alone = guided(clip, 5)
    run_steps([alone], clip, 3)

    small_gpu = dataclasses.replace(clip, model=RunsOutOfMemory(clip.model, max_cutouts=4))
    running, joiner = guided(clip, 5), guided(clip, 6)
    run_steps([running], small_gpu, 1)
    before = running.current().clone(), joiner.current().clone()
    with pytest.raises(torch.OutOfMemoryError):
        step_together([running, joiner], small_gpu, CPU)
    assert running.step == 1 and joiner.step == 0
    assert torch.equal(running.current(), before[0]) and torch.equal(joiner.current(), before[1])
    run_steps([running], small_gpu, 2)  # without the joiner it fits, and nothing of the failed step remains
    torch.testing.assert_close(running.current(), alone.current(), atol=0, rtol=0)


def test_the_memory_estimate_grows_with_cutouts_and_size(clip_store):
    clip = clip_store.clip()
    assert bytes_per_cutout(clip) > 0
    base = GuideConfig(steps=1, size=64, param="stack", cutn=8, lr=0.05, tv_weight=0.05)
    more_cutouts, larger = dataclasses.replace(base, cutn=16), dataclasses.replace(base, size=128)
    assert estimated_bytes(more_cutouts, clip) - estimated_bytes(base, clip) == 8 * bytes_per_cutout(clip)
    assert estimated_bytes(larger, clip) > estimated_bytes(base, clip)
