"""GAN training in chunks, as the worker will run it: steps per second, and what a checkpoint and
yielding the GPU between chunks cost.

Each chunk trains `--chunk-steps` DCGAN steps (64 px, batch 64, widths 64 by default) on random
images, then yields as the worker will between chunks to let other jobs in: the trainer is saved
to a temporary folder and dropped, the images go to the host (and CUDA's cache is emptied), then
both come back, the trainer through `GanTrainer.load`. One warm-up step runs first, untimed.

    python -m bench.bench_train                                  (the CPU: 3 chunks of 3 steps)
    python -m bench.bench_train --device cuda --chunks 5         (50 steps a chunk)

On the CPU a step at the defaults takes seconds, so a chunk there is 3 steps (the default run
stays under a minute); on a GPU it is 50. The last line printed is `chunk_overhead_pct=X.X`: the
time spent saving, dropping and reloading as a share of the time spent training, over all chunks.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from bench.figures import add_threads_option
from bot.art.gan import GanConfig, GanTrainer
from bot.art.models import choose_device

CPU_CHUNK_STEPS = 3
GPU_CHUNK_STEPS = 50


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def yield_device(trainer: GanTrainer, images: torch.Tensor, checkpoint: Path,
                 device: torch.device) -> tuple[GanTrainer, torch.Tensor, float]:
    """Save the trainer, let go of it and of the images on the device, then bring both back.

    Returns the new trainer, the images and when the checkpoint was written (perf_counter).
    """
    trainer.save(checkpoint)
    saved = time.perf_counter()
    del trainer
    images = images.cpu()
    if device.type == "cuda":
        torch.cuda.empty_cache()  # the GPU is really free for the next job now
    trainer = GanTrainer.load(checkpoint, device)
    images = images.to(device)
    synchronize(device)
    return trainer, images, saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=64, choices=(32, 64, 128))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=64, help="generator and discriminator widths")
    parser.add_argument("--chunk-steps", type=int, default=None,
                        help=f"steps a chunk (default {GPU_CHUNK_STEPS}; {CPU_CHUNK_STEPS} on the CPU)")
    parser.add_argument("--chunks", type=int, default=3)
    parser.add_argument("--images", type=int, default=256, help="training images (random pixels)")
    add_threads_option(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    device = choose_device(args.device)
    chunk_steps = args.chunk_steps or (CPU_CHUNK_STEPS if device.type == "cpu" else GPU_CHUNK_STEPS)
    config = GanConfig(image_size=args.size, batch_size=args.batch_size, generator_width=args.width,
                       discriminator_width=args.width)
    images = torch.rand(args.images, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    images = images.mul(2).sub(1).to(device)  # [N, 3, S, S] in -1..1
    trainer = GanTrainer(config, seed=0, device=device)
    parameters = sum(p.numel() for p in [*trainer.generator.parameters(), *trainer.discriminator.parameters()])
    print(f"device={device} size={args.size} batch={args.batch_size} width={args.width} "
          f"parameters={parameters / 1e6:.2f}M chunk_steps={chunk_steps} chunks={args.chunks} "
          f"images={args.images} threads={torch.get_num_threads()}")
    trainer.train_steps(1, images)  # warm-up: first-call allocations and kernel choices

    train_seconds, yield_seconds = [], []
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = Path(folder) / "gan.pt"
        for chunk in range(1, args.chunks + 1):
            synchronize(device)
            started = time.perf_counter()
            trainer.train_steps(chunk_steps, images)  # reads its losses back: the chunk has finished
            trained = time.perf_counter()

            trainer, images, saved = yield_device(trainer, images, checkpoint, device)
            back = time.perf_counter()

            train_seconds.append(trained - started)
            yield_seconds.append(back - trained)
            print(f"chunk {chunk}: {chunk_steps / train_seconds[-1]:7.2f} steps/s  train {train_seconds[-1]:7.2f} s  "
                  f"save {saved - trained:5.2f} s  reload {back - saved:5.2f} s  "
                  f"overhead {100 * yield_seconds[-1] / train_seconds[-1]:5.1f}%", flush=True)
        megabytes = checkpoint.stat().st_size / 2**20

    print(f"steps/s (median chunk): {chunk_steps / statistics.median(train_seconds):.2f}")
    print(f"chunk time (median): {statistics.median(train_seconds):.2f} s for {chunk_steps} steps")
    print(f"checkpoint + yield (median): {statistics.median(yield_seconds):.2f} s, checkpoint {megabytes:.1f} MiB")
    print(f"chunk_overhead_pct={100 * sum(yield_seconds) / sum(train_seconds):.1f}")


if __name__ == "__main__":
    main()
