"""End-to-end speed of `fornet predict`, `eval --weights` and `show-hardness` per runtime, in one process.

Contenders run the library functions the commands run (``predict_images``, ``evaluate_model``,
``show_hardness``) on the genuine fixture frames (``shared/fixtures/cityscapes-mini``, 9 frames of 2048 x 1024,
read in place), end to end: decode, normalise, the model, argmax, encode and write (``--format trainid``).
Rounds are interleaved (each round runs every contender once, in an order rotated by one), after one untimed
warm-up round that also builds each runtime (the ONNX export, the first-image check against eager PyTorch).
Models have random weights (speed does not depend on them) unless ``--weights`` names a checkpoint for the
agreement figure. Besides wall time, each pass's CPU time (``time.process_time``: every thread of this
process) is reported: on a machine that others load it says what a pass costs where the wall time cannot. Every registered variant can be named with ``--models``, so the benchmark follows the
model zoo as it changes. Report ratios, not absolute times, and the load average printed with them.

    python benchmarks/predict_speed.py --rounds 3                      # predict, eval --weights, show-hardness
    python benchmarks/predict_speed.py --rounds 3 --sections predict --models fornet_mbv3,fornet_r18
    python benchmarks/predict_speed.py --sections memory --frames 10,1000   # peak memory of `fornet predict`

Masks agreement: the share of pixels where a runtime's trainid masks equal plain eager PyTorch's (same model,
same frames). Memory: the peak resident memory (``ru_maxrss`` of the child, from ``wait4``) of ``fornet predict``
processes on N generated frames (10 distinct scenes of ``--frame-size``, hard-linked N/10 times each); the
graph is exported into a fresh cache by a first run on one frame, which is not reported.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from fornet_cli.data.cityscapes import CityscapesDataset
from fornet_cli.data.labels import CLASS_NAMES, TRAIN_ID_TO_COLOR
from fornet_cli.data.transforms import TransformSettings, eval_transforms
from fornet_cli.evaluation.evaluate import evaluate_model
from fornet_cli.hardness.show import HardnessConfig, show_hardness
from fornet_cli.inference.predict import PredictConfig, predict_images
from fornet_cli.inference.predictor import InferenceConfig, Predictor
from fornet_cli.model import create_model
from fornet_cli.model.calibrate import calibrate_batchnorm
from fornet_cli.model.peers import PEERS, build_peer
from fornet_cli.weights.format import ModelMeta, meta_for, save_pretrained
from fornet_cli.weights.resolve import LoadedModel, load_weights

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("FORNET_FIXTURES", ROOT.parent / "shared" / "fixtures")) / "cityscapes-mini"


@dataclass
class Contender:
    label: str
    model: str
    runtime: str
    run: Callable[[Path], Any]  # one end-to-end pass, writing under the folder given
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # CPU seconds of this process (all threads) per pass
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _model(name: str, weights: str | None) -> tuple[torch.nn.Module, ModelMeta]:
    if weights is not None:
        loaded = load_weights(weights)
        return loaded.model, loaded.meta
    torch.manual_seed(0)
    if name in PEERS:
        return calibrate_batchnorm(build_peer(name)), ModelMeta(name, 19, list(CLASS_NAMES), TRAIN_ID_TO_COLOR[:19].tolist())
    model = calibrate_batchnorm(create_model(name))
    return model, meta_for(model, CLASS_NAMES, TRAIN_ID_TO_COLOR[:19].tolist())


def _race(contenders: list[Contender], rounds: int, work: Path, title: str) -> str:
    """Warm-up round, then ``rounds`` interleaved timed rounds; a markdown table."""
    load_before = _load()
    for c in contenders:
        print(f"[{title}] warm-up {c.label}", file=sys.stderr)
        c.info = c.run(work / "warmup" / _slug(c.label)) or {}
    for r in range(rounds):
        order = contenders[r % len(contenders):] + contenders[: r % len(contenders)]
        for c in order:
            out = work / f"round{r}" / _slug(c.label)
            start, cpu = time.perf_counter(), time.process_time()
            c.run(out)
            c.times.append(time.perf_counter() - start)
            c.cpu.append(time.process_time() - cpu)
            print(f"[{title}] round {r + 1}/{rounds} {c.label}: {c.times[-1]:.2f} s", file=sys.stderr)
    lines = [f"\n### {title}\n", f"load average before {load_before}, after {_load()}; median of {rounds} "
             "interleaved rounds after a warm-up round\n",
             "| contender | runtime that ran | s per pass | x first row | CPU s per pass | x first row (CPU) |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    base, base_cpu = contenders[0].median, statistics.median(contenders[0].cpu)
    for c in contenders:
        cpu = statistics.median(c.cpu)
        lines.append(f"| {c.label} | {c.info.get('ran', c.runtime)} | {c.median:.2f} | {base / c.median:.2f}x | "
                     f"{cpu:.2f} | {base_cpu / cpu:.2f}x |")
    return "\n".join(lines)


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text)


# ------------------------------------------------------------------------------------------------ predict


def predict_section(models: list[str], runtimes: list[str], rounds: int, work: Path, weights: str | None) -> str:
    frames = sorted((FIXTURES / "leftImg8bit").rglob("*.png"))
    contenders = []
    for name in models:
        model, meta = _model(name, weights)
        for runtime in runtimes if name not in PEERS else ["torch"]:
            predictor = Predictor(model, InferenceConfig(runtime=runtime))

            def run(out: Path, predictor: Predictor = predictor, meta: ModelMeta = meta) -> dict[str, Any]:
                summary = predict_images(predictor, meta, [FIXTURES / "leftImg8bit"], out, PredictConfig(overwrite=True))
                assert summary.written == len(frames), summary.failed
                return {"ran": predictor.runtime_info.name}

            contenders.append(Contender(f"{name} --runtime {runtime}", name, runtime, run))
    table = _race(contenders, rounds, work, f"fornet predict, {len(frames)} fixture frames (2048 x 1024), --format trainid")
    table += ("\n\n| contender | images/s | images per CPU-second |\n| --- | ---: | ---: |\n" + "\n".join(
        f"| {c.label} | {len(frames) / c.median:.2f} | {len(frames) / statistics.median(c.cpu):.2f} |" for c in contenders))
    return table + "\n\n" + _agreement(contenders, work, rounds)


def _agreement(contenders: list[Contender], work: Path, rounds: int) -> str:
    """Share of pixels where each runtime's masks equal eager PyTorch's, per model (the last round's files)."""
    lines = ["| model | runtime | pixels equal to eager PyTorch's |", "| --- | --- | ---: |"]
    last = work / f"round{rounds - 1}"
    for c in contenders:
        eager = next((e for e in contenders if e.model == c.model and e.runtime == "torch"), None)
        if eager is None or eager is c:
            continue
        same = total = 0
        for mask in sorted((last / _slug(c.label)).rglob("*.png")):
            reference = last / _slug(eager.label) / mask.relative_to(last / _slug(c.label))
            a, b = np.array(Image.open(mask)), np.array(Image.open(reference))
            same, total = same + int((a == b).sum()), total + a.size
        lines.append(f"| {c.model} | {c.info.get('ran', c.runtime)} | {100 * same / total:.4f} % ({total - same:,} of {total:,} differ) |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ eval --weights, show-hardness


def eval_section(models: list[str], runtimes: list[str], rounds: int, work: Path, weights: str | None) -> str:
    contenders = []
    for name in models:
        model, meta = _model(name, weights)
        settings = TransformSettings(mean=tuple(meta.mean), std=tuple(meta.std))  # type: ignore[arg-type]
        data = CityscapesDataset(FIXTURES, "train", transform=eval_transforms(settings))
        for runtime in runtimes:
            predictor = Predictor(model, InferenceConfig(runtime=runtime))

            def run(out: Path, predictor: Predictor = predictor, data: Any = data) -> dict[str, Any]:
                evaluate_model(predictor.model, data, predictor=predictor)
                return {"ran": predictor.runtime_info.name}

            contenders.append(Contender(f"{name} --runtime {runtime}", name, runtime, run))
    return _race(contenders, rounds, work, f"fornet eval --weights, {len(data)} fixture frames (hard-region scores on)")


def hardness_section(models: list[str], runtimes: list[str], rounds: int, work: Path, weights: str | None) -> str:
    contenders = []
    for name in models:
        if name in PEERS:
            continue
        model, meta = _model(name, weights)
        loaded = LoadedModel(model, meta, "random weights" if weights is None else weights)
        for runtime in runtimes:
            config = HardnessConfig(gt_root=FIXTURES, runtime=runtime)

            def run(out: Path, config: HardnessConfig = config, loaded: LoadedModel = loaded) -> dict[str, Any]:
                report = show_hardness(loaded, [FIXTURES / "leftImg8bit"], out, config)
                return {"ran": report.model["runtime"]["name"]}

            contenders.append(Contender(f"{name} --runtime {runtime}", name, runtime, run))
    return _race(contenders, rounds, work, "fornet show-hardness, 9 fixture frames with ground truth (--threads 1)")


# ------------------------------------------------------------------------------------------------ memory


def memory_section(counts: list[int], work: Path, runtime: str, size: tuple[int, int] = (1024, 2048)) -> str:
    """Peak RSS of `fornet predict` child processes on N generated frames."""
    from fornet_cli.data.io import write_png
    from fornet_cli.data.scenes import render_scene

    model, meta = _model("fornet_mbv3", None)
    model_dir = work / "model"
    save_pretrained(model, model_dir, meta)
    distinct = work / "distinct"
    for i in range(10):
        write_png(distinct / f"scene{i}.png", render_scene(np.random.default_rng(i), size).image)
    lines = [f"\n### Peak memory of `fornet predict --runtime {runtime}` on generated {size[0]} x {size[1]} frames\n",
             f"load average {_load()}\n", "| frames | peak RSS (MiB) | seconds | images/s |", "| ---: | ---: | ---: | ---: |"]
    for n in [1, *counts]:  # a first, unreported run exports the graph into the cache
        inputs = work / f"frames{n}"
        for i in range(n):
            (inputs / f"{i // 100:03d}").mkdir(parents=True, exist_ok=True)
            os.link(distinct / f"scene{i % 10}.png", inputs / f"{i // 100:03d}" / f"frame{i:05d}.png")
        cmd = [sys.executable, "-m", "fornet_cli", "predict", str(inputs), "-o", str(work / f"out{n}"), "-w",
               str(model_dir), "--runtime", runtime]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        if status != 0:
            raise SystemExit(f"fornet predict failed: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
        if n in counts:
            lines.append(f"| {n} | {usage.ru_maxrss / 1024:.0f} | {seconds:.1f} | {n / seconds:.2f} |")
        shutil.rmtree(inputs)
        shutil.rmtree(work / f"out{n}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--models", default="fornet_mbv3,fornet_r18,lraspp_mobilenet_v3_large",
                    help="fornet variants (any registered: `fornet models`) and torchvision peers (eager only)")
    ap.add_argument("--runtimes", default="auto,torch")
    ap.add_argument("--sections", default="predict,eval,hardness,memory")
    ap.add_argument("--hardness-models", default="fornet_mbv3", help="models for the eval and show-hardness sections")
    ap.add_argument("--frames", default="10,1000", help="frame counts of the memory section")
    ap.add_argument("--frame-size", default="1024x2048", help="HxW of the memory section's generated frames")
    ap.add_argument("--weights", default=None, help="a checkpoint for every fornet model (default: random weights)")
    ap.add_argument("--json", type=Path, default=None, help="also write the tables' text to this JSON file")
    args = ap.parse_args()
    if not FIXTURES.is_dir():
        raise SystemExit(f"The fixture frames are not at {FIXTURES}; set FORNET_FIXTURES.")
    os.environ.setdefault("FORNET_CACHE", tempfile.mkdtemp(prefix="fornet-bench-cache-"))
    models, runtimes = args.models.split(","), args.runtimes.split(",")
    sections = args.sections.split(",")
    print(f"machine: {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"load average {_load()}")
    tables = {}
    with tempfile.TemporaryDirectory(prefix="fornet-predict-speed-") as tmp:
        work = Path(tmp)
        hard_models = args.hardness_models.split(",")
        steps = {
            "predict": lambda: predict_section(models, runtimes, args.rounds, work / "predict", args.weights),
            "eval": lambda: eval_section(hard_models, runtimes, args.rounds, work / "eval", args.weights),
            "hardness": lambda: hardness_section(hard_models, runtimes, args.rounds, work / "hardness", args.weights),
            "memory": lambda: memory_section([int(n) for n in args.frames.split(",")], work / "memory", runtimes[0],
                                             tuple(int(v) for v in args.frame_size.split("x"))),  # type: ignore[arg-type]
        }
        for name in sections:
            tables[name] = steps[name]()
            print(tables[name], flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(tables, indent=2) + "\n")


if __name__ == "__main__":
    main()
