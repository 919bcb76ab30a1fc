"""Training throughput (images/s) of FoR-Net variants: forward, the full FoR-Net loss, backward, AdamW step.

Random images and labels at the crop size, models interleaved round by round in one process.

    python benchmarks/train_throughput.py --models fornet_r18,fornet_mbv3 --crop 512 --batch 4 --steps 5
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

import fornet_cli
from fornet_cli.training.losses import FornetLoss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="fornet_r18,fornet_mbv3")
    ap.add_argument("--crop", type=int, default=512)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=5, help="timed steps per model and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, args.crop, args.crop)
    y = torch.randint(0, 19, (args.batch, args.crop, args.crop))
    loss_fn = FornetLoss()
    runs = {}
    for name in args.models.split(","):
        model = fornet_cli.create_model(name).train()
        runs[name] = (model, torch.optim.AdamW(model.parameters(), lr=1e-4))

    def step(model: torch.nn.Module, opt: torch.optim.Optimizer) -> None:
        out = model.forward_all(x)
        opt.zero_grad(set_to_none=True)
        loss_fn(out.logits, y, out.importance).total.backward()
        opt.step()

    for model, opt in runs.values():  # warm-up
        step(model, opt)
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, (model, opt) in runs.items():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step(model, opt)
            rates[name].append(args.steps * args.batch / (time.perf_counter() - t0))
    print(f"# {platform.machine()}, {args.threads} threads, torch {torch.__version__}, crop {args.crop}x{args.crop}, "
          f"batch {args.batch}, median of {args.rounds} rounds of {args.steps} steps")
    print("| model | train images/s |")
    print("| --- | ---: |")
    for name, values in rates.items():
        print(f"| {name} | {statistics.median(values):.2f} |")


if __name__ == "__main__":
    main()
