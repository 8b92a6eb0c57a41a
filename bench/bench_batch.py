"""Batched stepping: K identical imagine jobs stepped together against the same K jobs one after another.

Both use the same CLIP model in this process and the worker's own code (`ImagineTechnique.start` and
`step_together`), with random CLIP weights. For each K in 1, 2, 4 and 8 it prints the total steps per
second both ways, how much slower each batched job is than the same job alone, and the peak memory.

    HF_HUB_OFFLINE=1 python -m bench.bench_batch                         (the CPU, easel-tiny)
    HF_HUB_OFFLINE=1 python -m bench.bench_batch --model ViT-B-32 --device cuda --size 224 --cutn 32

The last line printed is `batch4_speedup=X.XX`: K=4 batched over K=4 one by one.
"""

from __future__ import annotations

import argparse
import time

import torch

from bench.bench_clip import peak_memory_mb
from bench.figures import add_threads_option
from bot.art.clip_guided import run_alone, step_together
from bot.art.models import ModelChoice, ModelStore, choose_device
from bot.art.technique import RunContext
from bot.art.techniques.imagine import TECHNIQUE, ImagineConfig

BATCH_SIZES = (1, 2, 4, 8)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def one_by_one(configs: list[ImagineConfig], context: RunContext) -> float:
    """Seconds to run every job alone, one after another."""
    synchronize(context.device)
    started = time.perf_counter()
    for seed, config in enumerate(configs):
        run_alone(TECHNIQUE.start(config, seed, context), context)
    synchronize(context.device)
    return time.perf_counter() - started


def batched(configs: list[ImagineConfig], context: RunContext) -> float:
    """Seconds to run every job in one batch, as the worker does: one step of all, then their progress."""
    synchronize(context.device)
    started = time.perf_counter()
    jobs = [TECHNIQUE.start(config, seed, context) for seed, config in enumerate(configs)]
    clip = context.models.clip()
    while not all(job.done for job in jobs):
        step_together([image for job in jobs for image in job.images], clip, context.device)
        for job in jobs:
            job.after_step()
    for job in jobs:
        job.result(cancelled=False)
    synchronize(context.device)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="easel-tiny", choices=("easel-tiny", "ViT-B-32"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--cutn", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each, alternated; the fastest counts")
    add_threads_option(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    device = choose_device(args.device)
    store = ModelStore(ModelChoice(clip_model=args.model, clip_pretrained="none"), device)
    context = RunContext(device=device, models=store, progress_every=10)
    config = ImagineConfig(prompt="a lighthouse in a storm | oil painting:0.5", steps=args.steps, size=args.size,
                           cutn=args.cutn)
    print(f"model={args.model} device={device} steps={args.steps} size={args.size} cutn={args.cutn} "
          f"threads={torch.get_num_threads()} repeats={args.repeats}")
    batched([ImagineConfig(prompt=config.prompt, steps=2, size=args.size, cutn=args.cutn)] * 2, context)  # warm-up

    solo_seconds = None
    speedups = {}
    print(f"{'K':>2} {'one by one, steps/s':>20} {'batched, steps/s':>17} {'speed-up':>9} "
          f"{'each job vs alone':>18} {'peak MiB':>9}")
    for count in BATCH_SIZES:
        configs = [config] * count
        sequential_runs, batched_runs = [], []
        for _ in range(args.repeats):  # alternated: the machine may be shared
            sequential_runs.append(one_by_one(configs, context))
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            batched_runs.append(batched(configs, context))
            memory = peak_memory_mb(device)
        sequential, together = min(sequential_runs), min(batched_runs)
        if solo_seconds is None:
            solo_seconds = sequential
        total_steps = count * args.steps
        speedups[count] = sequential / together
        print(f"{count:>2} {total_steps / sequential:>20.2f} {total_steps / together:>17.2f} "
              f"{speedups[count]:>8.2f}x {together / solo_seconds:>17.2f}x {memory:>9.1f}")
    memory_kind = "max_memory_allocated of the batched run" if device.type == "cuda" else "process peak RSS"
    print(f"(each job vs alone: a batched job's time to finish over one job run alone; peak: {memory_kind})")
    print(f"batch4_speedup={speedups[4]:.2f}")


if __name__ == "__main__":
    main()
