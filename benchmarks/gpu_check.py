"""Every CUDA path of fornet in one command, for a session that has a GPU for a few minutes.

    python benchmarks/gpu_check.py --out gpu-check            # on a CUDA machine: JSON + a markdown table
    python benchmarks/gpu_check.py --tiny --device cpu --out /tmp/check   # the same code at a tiny size (a test)

Sections (each reports ok / failed with the error / skipped with the reason, and never stops the others):

* train: a few steps of every registered variant through ``fornet_cli.training.train`` (the loop `fornet train`
  runs) with fp16 (GradScaler) and bf16 autocast and channels_last, ending in a validation on the device.
* ddp: `torchrun --nproc_per_node 2 fornet train` over NCCL (with two GPUs or more; skipped otherwise).
* eval, predict: ``evaluate_model`` and ``predict_images`` on the device with ``--runtime auto`` (channels_last
  + autocast on CUDA, checked against eager float32 on the first image), on a generated set.
* latency: forward passes at 1024 x 2048, batch 1 and 8, float32 / float16 / bfloat16 autocast, channels_last,
  for fornet's variants and torchvision's peers, interleaved; median ms, images/s, peak memory above the input.
* compile: torch.compile (Inductor) of the mobile variants against eager at batch 1, checked against eager.

On CUDA every timed call is bracketed by ``torch.cuda.synchronize()``; peak memory is
``torch.cuda.max_memory_allocated()`` above what was allocated before the call. Put the markdown table into
docs/BENCHMARKS.md ("GPU") with the GPU's name.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from fornet_cli.benchmark.memory import peak_memory_mib
from fornet_cli.benchmark.runner import build
from fornet_cli.inference.engines import CompiledEngine, EagerEngine
from fornet_cli.model import list_models
from fornet_cli.model.peers import PEERS

DTYPES = {"float32": None, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _section(name: str, results: dict[str, Any], fn: Callable[[], Any]) -> None:
    """Run one section; its rows, or the error that stopped it."""
    print(f"== {name}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    try:
        results[name] = {"status": "ok", "rows": fn()}
    except _Skip as skip:
        results[name] = {"status": "skipped", "reason": str(skip)}
    except Exception as exc:  # a check that fails is a finding: record it and go on
        results[name] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}",
                         "traceback": traceback.format_exc()[-4000:]}
    results[name]["seconds"] = round(time.perf_counter() - start, 1)


class _Skip(Exception):
    pass


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ------------------------------------------------------------------------------------------------ training


def _synth(root: Path, size: tuple[int, int]) -> Path:
    from fornet_cli.data.synth import generate_dataset

    if not (root / "leftImg8bit").is_dir():
        generate_dataset(root, 4, 2, size, seed=0)
    return root


def train_rows(args: argparse.Namespace, device: torch.device, work: Path) -> list[dict[str, Any]]:
    from fornet_cli.training.config import recipe
    from fornet_cli.training.loop import train

    data = _synth(work / "synth", args.data_size)
    amps = ("fp16", "bf16") if device.type == "cuda" else ("off", "bf16")
    rows = []
    for name in args.variants:
        for amp in amps:
            config = replace(recipe("cpu-quick"), model=name, data="synth", root=str(data), iters=args.steps,
                             batch=2, crop=args.crop, amp=amp, device=str(device), channels_last=True,
                             val_every=args.steps, ckpt_every=args.steps, log_every=1, workers=0, warmup_iters=0)
            start = time.perf_counter()
            result = train(config, work / "runs" / f"{name}-{amp}", force=True)
            row = {"model": name, "amp": amp, "steps": args.steps, "seconds": round(time.perf_counter() - start, 2)}
            row.update(_result_numbers(result))
            if result.iteration != args.steps:
                raise RuntimeError(f"{name} ({amp}) stopped at step {result.iteration} of {args.steps}")
            rows.append(row)
    return rows


def _result_numbers(result: Any) -> dict[str, Any]:
    last = result.history[-1] if result.history else {}
    return {"iteration": result.iteration, "best_miou": result.best_miou,
            "val_miou": last.get("miou") if isinstance(last, dict) else None}


def ddp_rows(args: argparse.Namespace, device: torch.device, work: Path) -> list[dict[str, Any]]:
    if device.type != "cuda" or torch.cuda.device_count() < 2:
        raise _Skip(f"needs 2 or more CUDA GPUs (this machine: {torch.cuda.device_count()})")
    data = _synth(work / "synth", args.data_size)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "fornet_cli",
           "train", "--recipe", "cpu-quick", "--data", "synth", "--root", str(data), "--iters", str(args.steps),
           "--batch", "2", "--crop", "x".join(map(str, args.crop)), "--device", "cuda", "--amp", "bf16",
           "--val-every", str(args.steps), "--ckpt-every", str(args.steps), "--workers", "0", "--out",
           str(work / "runs" / "ddp"), "--force"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"torchrun exited {proc.returncode}: {proc.stderr[-2000:]}")
    return [{"processes": 2, "backend": "nccl", "steps": args.steps, "ok": True}]


# ------------------------------------------------------------------------------------------------ eval, predict


def eval_predict_rows(args: argparse.Namespace, device: torch.device, work: Path) -> list[dict[str, Any]]:
    from fornet_cli.data.cityscapes import CityscapesDataset
    from fornet_cli.data.labels import CLASS_NAMES, TRAIN_ID_TO_COLOR
    from fornet_cli.data.transforms import TransformSettings, eval_transforms
    from fornet_cli.evaluation.evaluate import evaluate_model
    from fornet_cli.inference.predict import PredictConfig, predict_images
    from fornet_cli.inference.predictor import InferenceConfig, Predictor
    from fornet_cli.weights.format import meta_for

    data = _synth(work / "synth", args.data_size)
    rows = []
    for name in args.fast_variants:
        model, _ = build(name)
        model = model.to(device).eval()
        meta = meta_for(model, CLASS_NAMES, TRAIN_ID_TO_COLOR[:19].tolist())
        dataset = CityscapesDataset(data, "val", transform=eval_transforms(TransformSettings()))
        for what in ("eval", "predict", "predict --focus 0.3"):  # focus: the CUDA tile path, checked too
            focus = 0.3 if "focus" in what else None
            predictor = Predictor(model, InferenceConfig(runtime="auto", batch_size=2, focus=focus, focus_tile=64))
            start = time.perf_counter()
            if what == "eval":
                result = evaluate_model(model, dataset, predictor=predictor)
                detail = {"images": result.scores.num_images, "miou": result.scores.miou}
            else:
                summary = predict_images(predictor, meta, [data / "leftImg8bit"], work / "pred" / name,
                                         PredictConfig(overwrite=True))
                detail = {"images": summary.images, "written": summary.written}
            info = predictor.runtime_info
            rows.append({"model": name, "command": what, "seconds": round(time.perf_counter() - start, 2),
                         "runtime": info.name, "check_passed": None if info.check is None else info.check.passed,
                         "notes": info.notes, **detail})
            if info.notes:
                raise RuntimeError(f"{what} of {name} fell back: {info.notes}")
    return rows


# ------------------------------------------------------------------------------------------------ latency, compile


def _time(call: Callable[[], Any], device: torch.device, runs: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        call()
    _sync(device)
    times = []
    for _ in range(runs):
        _sync(device)
        start = time.perf_counter()
        call()
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


def _forward(model: torch.nn.Module, x: torch.Tensor, dtype: torch.dtype | None) -> Callable[[], Any]:
    def call() -> Any:
        with torch.inference_mode(), torch.autocast(x.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            return model(x)

    return call


def latency_rows(args: argparse.Namespace, device: torch.device, work: Path) -> list[dict[str, Any]]:
    h, w = args.size
    rows = []
    for name in [*args.fast_variants, *args.peers]:
        model, origin = build(name)
        model = model.to(device).eval().to(memory_format=torch.channels_last)
        for batch in args.batches:
            x = torch.randn(batch, 3, h, w, device=device).contiguous(memory_format=torch.channels_last)
            for precision in args.precisions:
                call = _forward(model, x, DTYPES[precision])
                times = _time(call, device, args.runs, args.warmup)
                median = statistics.median(times)
                peak = peak_memory_mib(call, device) if args.memory else None
                rows.append({"model": name, "origin": origin, "batch": batch, "precision": precision,
                             "channels_last": True, "median_ms": round(1000 * median, 2),
                             "images_per_s": round(batch / median, 2), "peak_memory_mib": peak})
            del x
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def compile_rows(args: argparse.Namespace, device: torch.device, work: Path) -> list[dict[str, Any]]:
    from fornet_cli.export.verify import compare

    h, w = args.size
    rows = []
    for name in args.compile_variants:
        model, _ = build(name)
        model = model.to(device).eval()
        x = torch.randn(1, 3, h, w, device=device)
        dtype = torch.float16 if device.type == "cuda" else None
        eager = EagerEngine(model, channels_last=True, autocast=dtype)
        compiled = CompiledEngine(model, channels_last=True, autocast=dtype)
        start = time.perf_counter()
        got = compiled.logits(x)  # compiles
        compile_s = time.perf_counter() - start
        check = compare(EagerEngine(model).logits(x).cpu(), got.cpu(), "fp16" if dtype else "fp32", compiled.name)
        times = {label: statistics.median(_time(lambda e=engine, x=x: e.logits(x), device, args.runs, args.warmup))
                 for label, engine in (("eager", eager), ("compile", compiled))}
        rows.append({"model": name, "precision": "float16" if dtype else "float32", "compile_s": round(compile_s, 1),
                     "eager_ms": round(1000 * times["eager"], 2), "compile_ms": round(1000 * times["compile"], 2),
                     "speedup": round(times["eager"] / times["compile"], 3), "check_passed": check.passed,
                     "max_abs_diff": check.max_abs_diff})
        if not check.passed:
            raise RuntimeError(f"torch.compile of {name} disagrees with eager: {check.to_dict()}")
    return rows


# ------------------------------------------------------------------------------------------------ report


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [f"gpu_check on {m['device']} ({m['gpus']} GPU(s)), torch {m['torch']}, CUDA {m['cuda']}, "
             f"size {m['size']}, {m['date']}\n", "| section | status | seconds | note |", "| --- | --- | ---: | --- |"]
    for name, sec in report["sections"].items():
        note = sec.get("reason") or sec.get("error", "")
        lines.append(f"| {name} | {sec['status']} | {sec['seconds']} | {note[:120]} |")
    lat = report["sections"].get("latency", {}).get("rows") or []
    if lat:
        lines += ["", "| model | origin | batch | precision | median ms | images/s | peak MiB |",
                  "| --- | --- | ---: | --- | ---: | ---: | ---: |"]
        lines += [f"| {r['model']} | {r['origin']} | {r['batch']} | {r['precision']} | {r['median_ms']} | "
                  f"{r['images_per_s']} | {'-' if r['peak_memory_mib'] is None else round(r['peak_memory_mib'])} |"
                  for r in lat]
    comp = report["sections"].get("compile", {}).get("rows") or []
    if comp:
        lines += ["", "| model | precision | compile s | eager ms | compiled ms | eager / compiled |",
                  "| --- | --- | ---: | ---: | ---: | ---: |"]
        lines += [f"| {r['model']} | {r['precision']} | {r['compile_s']} | {r['eager_ms']} | {r['compile_ms']} | "
                  f"{r['speedup']}x |" for r in comp]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", help="auto (CUDA when there is one), cuda or cpu")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes and few runs: the CPU test of this script")
    ap.add_argument("--out", type=Path, required=True, help="folder for gpu_check.json and gpu_check.md")
    ap.add_argument("--sections", default="train,ddp,eval_predict,latency,compile")
    args = ap.parse_args(argv)
    tiny = args.tiny
    args.size = (64, 128) if tiny else (1024, 2048)
    args.data_size = (64, 128) if tiny else (256, 512)
    args.crop = (64, 64) if tiny else (256, 256)
    args.batches = (1, 2) if tiny else (1, 8)
    args.steps = 2 if tiny else 5
    args.runs, args.warmup = (2, 1) if tiny else (20, 5)
    args.variants = list_models()
    args.fast_variants = [v for v in ("fornet_mbv3", "fornet_r18") if v in args.variants][: 1 if tiny else 2]
    args.compile_variants = args.fast_variants[:1]
    args.peers = ["lraspp_mobilenet_v3_large"] if tiny else list(PEERS)
    args.precisions = ("float32", "bfloat16") if tiny else tuple(DTYPES)
    args.memory = not tiny
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    os.environ.setdefault("FORNET_CACHE", tempfile.mkdtemp(prefix="fornet-gpu-check-cache-"))
    machine = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
               "gpus": torch.cuda.device_count(), "torch": torch.__version__, "cuda": torch.version.cuda,
               "size": "x".join(map(str, args.size)), "date": time.strftime("%Y-%m-%d %H:%M"),
               "load_before": os.getloadavg()[0]}
    sections: dict[str, Any] = {}
    steps = {"train": train_rows, "ddp": ddp_rows, "eval_predict": eval_predict_rows, "latency": latency_rows,
             "compile": compile_rows}
    with tempfile.TemporaryDirectory(prefix="fornet-gpu-check-") as tmp:
        for name in args.sections.split(","):
            _section(name, sections, lambda fn=steps[name]: fn(args, device, Path(tmp)))
    report = {"machine": machine, "sections": sections}
    args.out.mkdir(parents=True, exist_ok=True)
    from fornet_cli.fsutil import atomic_write_text

    atomic_write_text(args.out / "gpu_check.json", json.dumps(report, indent=2, default=str) + "\n")
    atomic_write_text(args.out / "gpu_check.md", markdown(report))
    print(markdown(report))
    return 1 if any(s["status"] == "failed" for s in sections.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
