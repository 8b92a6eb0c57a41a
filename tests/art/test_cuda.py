"""What only a CUDA device can show: bf16 autocast, no host syncs between progress reports, batching there,
channels-last convolutions.

Skipped, with the reason, on a machine without one; the same code paths run on the CPU in the other tests.
"""

import pytest
import torch

from bot.art.clip_guided import GuidedImage, clip_autocast, step_together
from bot.art.models import ModelChoice, ModelStore
from bot.art.techniques.imagine import ImagineConfig, guide_config, prompt_targets
from bot.art.vgg import vgg_activations

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")

CUDA = torch.device("cuda")


@pytest.fixture(scope="module")
def cuda_clip():
    return ModelStore(ModelChoice(clip_model="easel-tiny", clip_pretrained="none"), CUDA).clip()


def guided(clip, seed: int, **changes) -> GuidedImage:
    config = ImagineConfig(**{"prompt": "a lighthouse", "steps": 6, "size": 64, "cutn": 8} | changes)
    return GuidedImage(guide_config(config), prompt_targets(config, clip, CUDA), seed, CUDA)


def test_clip_runs_in_bf16_where_the_gpu_has_it(cuda_clip):
    if not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    with clip_autocast(CUDA):
        embeds = cuda_clip.model.encode_image(torch.rand(2, 3, cuda_clip.image_size, cuda_clip.image_size,
                                                         device=CUDA))
    assert embeds.dtype == torch.bfloat16


def test_steps_between_progress_reports_never_wait_for_the_gpu(cuda_clip):
    images = [guided(cuda_clip, 1), guided(cuda_clip, 2, size=96)]
    step_together(images, cuda_clip, CUDA)  # the first step allocates and initialises lazily
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            step_together(images, cuda_clip, CUDA)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_a_batch_on_the_gpu_gives_each_image_what_it_gets_alone(cuda_clip):
    alone = guided(cuda_clip, 3)
    for _ in range(4):
        step_together([alone], cuda_clip, CUDA)
    batched, other = guided(cuda_clip, 3), guided(cuda_clip, 4, prompt="a fox")
    for _ in range(4):
        step_together([batched, other], cuda_clip, CUDA)
    # bf16 rounds coarsely, and a larger batch may take other kernels: close, not equal.
    torch.testing.assert_close(batched.current(), alone.current(), atol=2e-2, rtol=0)


def test_vgg_layers_run_channels_last_on_the_gpu():
    vgg = ModelStore(ModelChoice(vgg_weights="none"), CUDA).vgg_features()
    activations = vgg_activations(vgg, torch.rand(1, 3, 64, 64, device=CUDA), ["relu2_1"])
    assert activations["relu2_1"].is_contiguous(memory_format=torch.channels_last)
