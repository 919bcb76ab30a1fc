"""Model latency on the CPU: the tables of docs/BENCHMARKS.md ("Model latency (CPU)", "onnxruntime vs
eager", "Top-K sweep"), measured with the library behind `fornet benchmark`.

Every model (fornet variants and torchvision's peers) runs in one process, in interleaved rounds, in eager
PyTorch and in onnxruntime; the Top-K sweep follows in the same process. Report ratios, not absolute times.

    python benchmarks/models_cpu.py --runs 7                  # the docs tables (~10 minutes on 2 cores)
    python benchmarks/models_cpu.py --models fornet_r101 --size 512x1024 --runs 3

The same as `fornet benchmark --peers --runtime torch,onnxruntime --topk-sweep fornet_mbv3 --markdown`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fornet_cli.benchmark.runner import DEFAULT_MODELS, BenchmarkConfig, run_benchmark


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS), help="fornet variants (the peers are always added)")
    ap.add_argument("--size", default="1024x2048")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--sweep", default="fornet_mbv3", help="variant for the Top-K sweep ('' for none)")
    ap.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    args = ap.parse_args()
    h, w = (int(v) for v in args.size.lower().split("x"))
    config = BenchmarkConfig(
        models=tuple(m for m in args.models.split(",") if m), peers=True, size=(h, w),
        runtimes=("torch", "onnxruntime"), runs=args.runs, warmup=args.warmup, threads=args.threads,
        topk_sweep=args.sweep or None,
    )
    result = run_benchmark(config, progress=lambda message: print(f"  {message}", flush=True))
    print()
    print(result.markdown())
    if args.json is not None:
        args.json.write_text(json.dumps(result.to_dict(), indent=2) + "\n")


if __name__ == "__main__":
    main()
