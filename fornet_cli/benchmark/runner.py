"""``fornet benchmark``: parameters, GMACs, latency, throughput and peak memory of FoR-Net variants next to
torchvision's segmentation models, in eager PyTorch and onnxruntime.

Fairness rules: every model is built in this process the same way (random weights, eval mode, same
dtype, device and memory format, ``torch.inference_mode``, the same input tensor); onnxruntime gets as
many intra-op threads as PyTorch. Timed runs are interleaved: round r runs every contender once, in an
order rotated by one each round, so that load from other processes on a shared machine and any
position effect hit every model alike. Report ratios, not absolute times. docs/BENCHMARKS.md has the
measured tables and how memory is measured.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..inference.engines import CompiledEngine, EagerEngine, Engine
from ..inference.runtime import auto_choice
from ..model import create_model
from ..model.calibrate import calibrate_batchnorm
from ..model.complexity import count_macs, count_parameters
from ..model.peers import PEERS, build_peer
from .config import DEFAULT_MODELS, RUNTIMES, SWEEP_POINTS, BenchmarkConfig
from .memory import exact_cpu_accounting, peak_memory_mib
from .report import REFERENCE, BenchmarkResult, Measurement

__all__ = [
    "DEFAULT_MODELS",
    "PEERS",
    "REFERENCE",
    "RUNTIMES",
    "SWEEP_POINTS",
    "BenchmarkConfig",
    "BenchmarkResult",
    "Measurement",
    "build",
    "build_peer",
    "run_benchmark",
    "sweep_ratios",
]

# ------------------------------------------------------------------------------------------ building models


def build(name: str, num_classes: int = 19) -> tuple[nn.Module, str]:
    """A model by name and its origin: ``paper``, ``ours`` or ``peer`` (random weights, calibrated BatchNorm)."""
    if name in PEERS:
        return calibrate_batchnorm(build_peer(name, num_classes)), "peer"
    model = calibrate_batchnorm(create_model(name, num_classes=num_classes))
    return model, "paper" if model.config.paper else "ours"


def sweep_ratios(base: tuple[float, ...], largest: float) -> tuple[float, ...]:
    """The variant's ratios scaled so that the largest is ``largest`` (clipped to 1)."""
    top = max(base)
    return tuple(min(1.0, round(r * largest / top, 6)) for r in base)


def prepare(model: nn.Module, config: BenchmarkConfig) -> nn.Module:
    """The same treatment for every model: eval mode, device, dtype, memory format."""
    model = model.eval().to(config.device)
    if config.half:
        model.half()
        if hasattr(model, "selector"):
            model.selector.float()  # FoR-Net ranks importance in float32 by design
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    return model


# ------------------------------------------------------------------------------------------ running


Progress = Callable[[str], None]


@dataclass
class _Contender:
    row: Measurement
    call: Callable[[], Any]
    memory_setup: Callable[[], Callable[[], Any]] | None = None  # onnxruntime: a fresh session's run


def machine_info(config: BenchmarkConfig) -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu": _cpu_name(),
        "logical_cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": _cpu_name() if config.device == "cpu" else torch.cuda.get_device_name(),
    }
    if "onnxruntime" in config.runtimes:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def run_benchmark(config: BenchmarkConfig, progress: Progress | None = None) -> BenchmarkResult:
    """Measure every model of ``config`` (and its Top-K sweep); see the module docstring for the rules."""
    say = progress or (lambda message: None)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    if "onnxruntime" in config.runtimes:
        from ..extras import require

        require("onnxruntime", "--runtime onnxruntime")
        require("onnx", "--runtime onnxruntime")
    torch.manual_seed(0)
    h, w = config.size
    dtype = torch.float16 if config.half else torch.float32
    x = torch.randn(config.batch, 3, h, w).to(config.device, dtype)
    if config.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    machine = machine_info(config)
    machine["load_before"] = _load()
    with tempfile.TemporaryDirectory(prefix="fornet-bench-") as tmp:
        contenders = _contenders(config, x, Path(tmp), say)
        _time(contenders, config, say, "models")
        sweep = _sweep(config, x, say)
        machine["load_after"] = _load()  # the timing is over; what follows only measures memory
        if config.memory:
            _memory(contenders, config, say)  # not for the sweep: its point is latency
    rows = [c.row for c in contenders]
    return BenchmarkResult(config, machine, rows, [c.row for c in sweep])


def time_models(models: dict[str, nn.Module], config: BenchmarkConfig) -> dict[str, float]:
    """Median eager latency in seconds of already-built models (e.g. with custom Top-K ratios), measured
    like :func:`run_benchmark`: same input, same preparation, warm-up, rotating interleaved rounds."""
    torch.manual_seed(0)
    x = torch.randn(config.batch, 3, *config.size).to(config.device)
    contenders = [
        _Contender(Measurement(name, "custom", "torch", count_parameters(m), 0.0, batch=config.batch),
                   _eager_call(prepare(m, config), x))
        for name, m in models.items()
    ]
    _time(contenders, config, lambda message: None, "models")
    return {c.row.model: c.row.median_s for c in contenders}


def _contenders(config: BenchmarkConfig, x: torch.Tensor, tmp: Path, say: Progress) -> list[_Contender]:
    out: list[_Contender] = []
    for name in config.model_names:
        out += _model_contenders(name, config, x, tmp, say)
    return out


def _model_contenders(name: str, config: BenchmarkConfig, x: torch.Tensor, tmp: Path, say: Progress) -> list[_Contender]:
    """One model in every runtime asked for: eager, onnxruntime, torch.compile and what ``auto`` runs."""
    h, w = config.size
    say(f"building {name}")
    model, origin = build(name, config.num_classes)
    params = count_parameters(model)
    gmacs = count_macs(model, h, w, config.batch) / 1e9
    ratios = getattr(model, "topk_ratios", None)
    auto = auto_choice(config.device) if "auto" in config.runtimes else None
    onnx: tuple[Callable[[], Any], Callable[[], Callable[[], Any]]] | None = None
    if "onnxruntime" in config.runtimes or auto == "onnxruntime":  # exported first, from the float32 CPU model
        say(f"exporting {name} to ONNX")
        onnx = _onnx_calls(model, name, x, tmp, config)
    prepared = prepare(model, config)
    calls: list[tuple[str, Callable[[], Any], Any]] = []
    if "torch" in config.runtimes:
        calls.append(("torch", _eager_call(prepared, x), None))
    if onnx is not None and "onnxruntime" in config.runtimes:
        calls.append(("onnxruntime", *onnx))
    if "compile" in config.runtimes:
        calls.append(("compile", _engine_call(CompiledEngine(prepared), x), None))
    if auto == "onnxruntime":
        assert onnx is not None
        calls.append((f"auto: {AUTO_LABELS[auto]}", *onnx))
    elif auto is not None:  # what predict runs: channels_last (and autocast on CUDA) on a copy of the model
        engine = EagerEngine(prepared, channels_last=True, autocast=torch.float16 if auto == "cuda" else None)
        calls.append((f"auto: {AUTO_LABELS[auto]}", _engine_call(engine, x), None))
    return [
        _Contender(Measurement(name, origin, runtime, params, gmacs, batch=config.batch, topk_ratios=ratios), call, setup)
        for runtime, call, setup in calls
    ]


AUTO_LABELS = {"onnxruntime": "onnxruntime", "channels_last": "torch channels_last",
               "cuda": "torch channels_last autocast float16"}


def _engine_call(engine: Engine, x: torch.Tensor) -> Callable[[], Any]:
    return lambda: engine.logits(x)


def _eager_call(model: nn.Module, x: torch.Tensor) -> Callable[[], Any]:
    def call() -> Any:
        with torch.inference_mode():
            return model(x)

    return call


def _onnx_calls(
    model: nn.Module, name: str, x: torch.Tensor, tmp: Path, config: BenchmarkConfig
) -> tuple[Callable[[], Any], Callable[[], Callable[[], Any]]]:
    """The timed call on one session, and a factory of fresh sessions for the memory pass."""
    from ..export.exporter import ExportOptions, export_onnx
    from ..export.onnx_session import create_session

    path = tmp / f"{name}.onnx"
    # The default `fornet export` graph (dynamic shapes), verified at a small size to keep this quick.
    export_onnx(model, path, ExportOptions(height=64, width=128, half=config.half, overwrite=True))
    threads = torch.get_num_threads()
    session = create_session(path, config.device, threads)
    feed = {"image": x.float().cpu().numpy()}

    def fresh() -> Callable[[], Any]:
        # A new session without the CPU arena (which grows in coarse chunks and keeps them): its first
        # run allocates what it needs, and the resident set shows it.
        new = create_session(path, config.device, threads, arena=False)
        return lambda: new.run(None, feed)

    return (lambda: session.run(None, feed)), fresh


def _time(contenders: list[_Contender], config: BenchmarkConfig, say: Progress, what: str) -> None:
    n = len(contenders)
    if n == 0:
        return
    for i, c in enumerate(contenders):
        for _ in range(config.warmup):
            say(f"warm-up {c.row.label} ({i + 1}/{n})")
            c.call()
            _sync(config.device)
    for r in range(config.runs):
        order = contenders[r % n :] + contenders[: r % n]  # rotate: nobody always follows the same model
        for c in order:
            say(f"{what}: run {r + 1}/{config.runs}, {c.row.label}")
            _sync(config.device)
            start = time.perf_counter()
            c.call()
            _sync(config.device)
            c.row.times.append(time.perf_counter() - start)


def _sweep(config: BenchmarkConfig, x: torch.Tensor, say: Progress) -> list[_Contender]:
    if config.topk_sweep is None:
        return []
    h, w = config.size
    name = config.topk_sweep
    model, origin = build(name, config.num_classes)
    params = count_parameters(model)
    base = model.topk_ratios  # type: ignore[attr-defined]
    prepared = prepare(model, config)
    contenders = []
    for largest in SWEEP_POINTS:
        ratios = sweep_ratios(base, largest)
        model.topk_ratios = ratios  # type: ignore[attr-defined]
        gmacs = count_macs(model, h, w, config.batch) / 1e9
        row = Measurement(name, origin, "torch", params, gmacs, batch=config.batch, topk_ratios=ratios)
        contenders.append(_Contender(row, _ratio_call(prepared, ratios, x)))
    _time(contenders, config, say, "Top-K sweep")
    return contenders


def _ratio_call(model: nn.Module, ratios: tuple[float, ...], x: torch.Tensor) -> Callable[[], Any]:
    def call() -> Any:
        model.topk_ratios = ratios  # type: ignore[attr-defined]
        with torch.inference_mode():
            return model(x)

    return call


def _memory(contenders: list[_Contender], config: BenchmarkConfig, say: Progress) -> None:
    if config.device == "cpu":
        exact_cpu_accounting()
    for c in contenders:
        if c.row.runtime == "onnxruntime" and config.device == "cuda":
            continue  # onnxruntime's CUDA arena is invisible to torch.cuda's statistics
        say(f"peak memory of {c.row.label}")
        call = c.memory_setup() if c.memory_setup is not None else c.call
        c.row.peak_memory_mib = peak_memory_mib(call, config.device)
