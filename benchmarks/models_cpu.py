"""CPU latency of every registered variant next to torchvision's LRASPP MobileNetV3-Large.

All models are built in this process and timed in interleaved order (round r times model 1, 2, ...,
then round r+1), so that load from other processes on a shared machine hits them alike. Report ratios
to the peer, not absolute times.

    python benchmarks/models_cpu.py --size 1024x2048 --runs 3
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
from torchvision.models.segmentation import lraspp_mobilenet_v3_large

import fornet_cli
from fornet_cli.engine.complexity import count_macs, count_parameters


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="1024x2048")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--models", default=",".join(fornet_cli.list_models()))
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    models = {name: fornet_cli.create_model(name).eval() for name in args.models.split(",")}
    models["lraspp_mobilenet_v3_large (peer)"] = lraspp_mobilenet_v3_large(
        weights=None, weights_backbone=None, num_classes=19
    ).eval()
    x = torch.randn(1, 3, h, w)
    times: dict[str, list[float]] = {name: [] for name in models}
    with torch.inference_mode():
        for m in models.values():  # warm-up: first-call allocations and kernel selection
            m(x)
        for _ in range(args.runs):
            for name, m in models.items():
                t0 = time.perf_counter()
                out = m(x)
                times[name].append(time.perf_counter() - t0)
                assert (out["out"] if isinstance(out, dict) else out).shape[-2:] == (h, w)

    peer = statistics.median(times["lraspp_mobilenet_v3_large (peer)"])
    rows = []
    for name, m in models.items():
        med = statistics.median(times[name])
        rows.append(
            {
                "model": name,
                "params": count_parameters(m),
                "gmacs": round(count_macs(m, h, w) / 1e9, 1),
                "latency_s": round(med, 3),
                "vs_peer": round(med / peer, 2),
            }
        )
    print(f"# {platform.processor() or platform.machine()}, {args.threads} threads, torch {torch.__version__}, "
          f"input 1x3x{h}x{w}, median of {args.runs} interleaved runs")
    print("| model | params | GMACs | latency (s) | x peer |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['model']} | {r['params']:,} | {r['gmacs']} | {r['latency_s']} | {r['vs_peer']} |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
