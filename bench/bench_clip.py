"""Steps per second of the `imagine` technique against the same loop written the notebook way.

The reference uses the same CLIP network and weights, parameterisation, prompts, losses and
settings, but cuts its cutouts one by one in a Python loop (crop, F.interpolate, flip, jitter,
noise per cutout) and reads the loss back with `.item()` every step. It loads CLIP the plain
open_clip way (an nn.Conv2d patch embedding); `--same-model` gives it our ModelStore's model
instead (matmul patch embedding), which isolates the loop differences. Random CLIP weights.

    HF_HUB_OFFLINE=1 python -m bench.bench_clip --model easel-tiny --steps 40   (from the repo root)
The last line printed is `ratio_vs_reference=X.XX` (ours steps/s over the reference's). With `--grid`
it runs sizes 128, 256 and 512 with 8, 32 and 64 cutouts, prints a line per cell, and last
`ratio_min=X.XX ratio_median=X.XX`.
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import statistics
import time

import open_clip
import torch
import torch.nn.functional as F

from bench.figures import add_threads_option
from bot.art.losses import total_variation, weighted_prompt_loss
from bot.art.models import ClipModel, ModelChoice, ModelStore, choose_device
from bot.art.parameterizations import make_parameterization
from bot.art.technique import RunContext
from bot.art.techniques.imagine import TECHNIQUE, ImagineConfig

WARMUP_STEPS = 2
GRID_SIZES = (128, 256, 512)
GRID_CUTNS = (8, 32, 64)


def reference_run(config: ImagineConfig, clip: ClipModel, seed: int, device: torch.device) -> list[float]:
    """The classic notebook loop, for comparison only."""
    torch.manual_seed(seed)
    generator = torch.Generator(device=device).manual_seed(seed)
    prompt_embeds, prompt_weights = TECHNIQUE.prompt_targets(config, clip, device)  # [P, D], [P]
    image_param = make_parameterization(config.param, config.size, device, generator)
    optimizer = torch.optim.Adam(image_param.parameters(), lr=config.lr)
    side, cut_size = config.size, clip.image_size
    min_side = int(side * 0.25)
    losses = []
    for _ in range(config.steps):
        image = image_param()  # [1, 3, S, S]
        cutouts = []
        for _ in range(config.cutn):
            crop_side = int(torch.rand([]) * (side - min_side) + min_side)
            x = int(torch.randint(0, side - crop_side + 1, ()))
            y = int(torch.randint(0, side - crop_side + 1, ()))
            cutout = image[:, :, y:y + crop_side, x:x + crop_side]
            cutout = F.interpolate(cutout, size=(cut_size, cut_size), mode="bilinear", align_corners=False)
            if torch.rand([]) < 0.5:
                cutout = cutout.flip(3)
            mean = cutout.mean()
            cutout = (cutout - mean) * (1 + 0.05 * (2 * torch.rand([]) - 1)) + mean
            cutout = cutout + 0.05 * (2 * torch.rand(1, 3, 1, 1, device=device) - 1)
            cutout = cutout + 0.05 * torch.rand([]) * torch.randn_like(cutout)
            cutouts.append(cutout)
        cutouts = (torch.cat(cutouts) - clip.mean) / clip.std  # [cutn, 3, C, C]
        image_embeds = F.normalize(clip.model.encode_image(cutouts).float(), dim=-1)
        loss = weighted_prompt_loss(image_embeds, prompt_embeds, prompt_weights)
        loss = loss + config.tv_weight * total_variation(image)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def plain_open_clip(clip: ClipModel, model_name: str, device: torch.device) -> ClipModel:
    """The same network and weights, loaded the way a notebook would (open_clip's own modules)."""
    model = open_clip.create_model(model_name, device=device).eval().requires_grad_(False)
    model.load_state_dict(clip.model.state_dict())
    return dataclasses.replace(clip, model=model)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def timed(device: torch.device, work) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    work()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - started


def compare(args: argparse.Namespace, store: ModelStore, reference_clip: ClipModel, device: torch.device,
            size: int, cutn: int) -> tuple[float, float, float, float]:
    """Steps/s of imagine and of the reference at one size and cutout count, and their peak memory (MiB).

    Runs are alternated and the fastest of `args.repeats` of each counts: the machine may be shared.
    """
    config = ImagineConfig(prompt="a lighthouse in a storm | oil painting:0.5", negative="blurry",
                           steps=args.steps, size=size, cutn=cutn)
    context = RunContext(device=device, models=store, progress_every=args.steps)
    warmup = ImagineConfig(prompt=config.prompt, steps=WARMUP_STEPS, size=size, cutn=cutn)
    TECHNIQUE.run(warmup, args.seed, context)
    reference_run(warmup, reference_clip, args.seed, device)

    def run_ours() -> None:
        TECHNIQUE.run(config, args.seed, context)

    def run_reference() -> None:
        reference_run(config, reference_clip, args.seed, device)

    ours_seconds, reference_seconds = [], []
    for _ in range(args.repeats):
        ours_seconds.append(timed(device, run_ours))
        ours_memory = peak_memory_mb(device)
        reference_seconds.append(timed(device, run_reference))
        reference_memory = peak_memory_mb(device)
    return args.steps / min(ours_seconds), args.steps / min(reference_seconds), ours_memory, reference_memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="easel-tiny", choices=("easel-tiny", "ViT-B-32"))
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--cutn", type=int, default=32)
    parser.add_argument("--grid", action="store_true",
                        help=f"every size in {GRID_SIZES} with every cutn in {GRID_CUTNS} (--size and --cutn "
                             "ignored): one line per cell, then ratio_min= and ratio_median=")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--same-model", action="store_true",
                        help="give the reference our ModelStore's CLIP (matmul patch embedding) too")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed runs of each, alternated; the fastest counts")
    add_threads_option(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    device = choose_device(args.device)
    store = ModelStore(ModelChoice(clip_model=args.model, clip_pretrained="none"), device)
    clip = store.clip()
    reference_clip = clip if args.same_model else plain_open_clip(clip, args.model, device)
    shape = "grid" if args.grid else f"size={args.size} cutn={args.cutn}"
    print(f"model={args.model} device={device} steps={args.steps} {shape} "
          f"cut_size={clip.image_size} threads={torch.get_num_threads()} repeats={args.repeats} "
          f"reference_model={'same' if args.same_model else 'plain open_clip'}")

    if args.grid:
        ratios = []
        for size in GRID_SIZES:
            for cutn in GRID_CUTNS:
                ours_rate, reference_rate, _, _ = compare(args, store, reference_clip, device, size, cutn)
                ratios.append(ours_rate / reference_rate)
                print(f"size={size:<4} cutn={cutn:<3} imagine {ours_rate:7.2f} steps/s  "
                      f"reference {reference_rate:7.2f} steps/s  ratio={ratios[-1]:.2f}", flush=True)
        print(f"ratio_min={min(ratios):.2f} ratio_median={statistics.median(ratios):.2f}")
        return

    ours_rate, reference_rate, ours_memory, reference_memory = compare(
        args, store, reference_clip, device, args.size, args.cutn)
    memory_kind = "max_memory_allocated" if device.type == "cuda" else "process peak RSS, cumulative"
    print(f"imagine:   {ours_rate:7.2f} steps/s  peak memory {ours_memory:8.1f} MiB")
    print(f"reference: {reference_rate:7.2f} steps/s  peak memory {reference_memory:8.1f} MiB")
    print(f"(peak memory is the {memory_kind})")
    print(f"ratio_vs_reference={ours_rate / reference_rate:.2f}")


if __name__ == "__main__":
    main()
