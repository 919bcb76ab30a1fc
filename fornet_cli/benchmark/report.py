"""What ``fornet benchmark`` measured: one :class:`Measurement` per contender, and the tables (ratios to the
reference peer, onnxruntime speed-ups, the Top-K sweep) as JSON and markdown."""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from .config import BenchmarkConfig

REFERENCE = "lraspp_mobilenet_v3_large"  # ratios are given against this peer in eager PyTorch


@dataclass
class Measurement:
    """One contender: a model in one runtime (and, in a sweep, at one Top-K setting)."""

    model: str
    origin: str  # paper | ours | peer
    runtime: str
    parameters: int
    gmacs: float
    times: list[float] = field(default_factory=list)  # seconds per timed run
    peak_memory_mib: float | None = None
    topk_ratios: tuple[float, ...] | None = None
    batch: int = 1

    @property
    def median_s(self) -> float:
        return statistics.median(self.times)

    @property
    def p90_s(self) -> float:
        """Nearest-rank 90th percentile (with 5 runs: the slowest)."""
        ordered = sorted(self.times)
        return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]

    @property
    def images_per_s(self) -> float:
        return self.batch / self.median_s

    @property
    def label(self) -> str:
        return f"{self.model} ({self.runtime})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "origin": self.origin, "runtime": self.runtime,
            "parameters": self.parameters, "gmacs": round(self.gmacs, 2),
            "median_ms": round(1000 * self.median_s, 1), "p90_ms": round(1000 * self.p90_s, 1),
            "images_per_s": round(self.images_per_s, 3),
            "peak_memory_mib": None if self.peak_memory_mib is None else round(self.peak_memory_mib, 1),
            "topk_ratios": None if self.topk_ratios is None else list(self.topk_ratios),
            "times_ms": [round(1000 * t, 1) for t in self.times],
        }


@dataclass
class BenchmarkResult:
    config: BenchmarkConfig
    machine: dict[str, Any]
    rows: list[Measurement]
    sweep: list[Measurement]

    def reference(self) -> Measurement | None:
        """The row ratios are given against: lraspp_mobilenet_v3_large in eager PyTorch when present."""
        for row in self.rows:
            if row.model == REFERENCE and row.runtime == "torch":
                return row
        return next((r for r in self.rows if r.model == REFERENCE), None)

    def ratio(self, row: Measurement) -> float | None:
        ref = self.reference()
        return None if ref is None else row.median_s / ref.median_s

    def onnxruntime_speedups(self) -> dict[str, float]:
        """Eager median / onnxruntime median, per model benchmarked in both runtimes."""
        eager = {r.model: r for r in self.rows if r.runtime == "torch"}
        onnx = [r for r in self.rows if r.runtime == "onnxruntime" and r.model in eager]
        return {r.model: eager[r.model].median_s / r.median_s for r in onnx}

    def to_dict(self) -> dict[str, Any]:
        config = asdict(self.config)
        config["size"] = list(self.config.size)
        ref = self.reference()
        return {
            "machine": self.machine,
            "config": config,
            "reference": None if ref is None else ref.label,
            "rows": [{**r.to_dict(), "vs_reference": _round(self.ratio(r))} for r in self.rows],
            "onnxruntime_speedup": {k: round(v, 3) for k, v in self.onnxruntime_speedups().items()},
            "topk_sweep": [r.to_dict() for r in self.sweep],
        }

    def markdown(self) -> str:
        """Markdown tables for docs/BENCHMARKS.md."""
        h, w = self.config.size
        m = self.machine
        lines = [
            f"Input {self.config.batch}x3x{h}x{w}, {m['device']}, {m['threads']} threads, torch {m['torch']}"
            + (f", onnxruntime {m['onnxruntime']}" if m.get("onnxruntime") else "")
            + f"; median and p90 of {self.config.runs} interleaved runs after {self.config.warmup} warm-up"
            + f"; load average {m['load_before']} before, {m['load_after']} after.",
            "",
        ]
        if self.rows:
            ref = self.reference()
            lines += [
                "| model | origin | runtime | params (M) | GMACs | median (ms) | p90 (ms) | images/s | peak mem (MiB) "
                f"| x {REFERENCE if ref else 'ref'} |",
                "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            ]
            for r in self.rows:
                ratio = self.ratio(r)
                lines.append(
                    f"| {r.model} | {r.origin} | {r.runtime} | {r.parameters / 1e6:.2f} | {r.gmacs:.1f} | "
                    f"{1000 * r.median_s:.0f} | {1000 * r.p90_s:.0f} | {r.images_per_s:.2f} | "
                    f"{_fmt(r.peak_memory_mib, '.0f')} | {_fmt(ratio, '.2f')} |"
                )
        speedups = self.onnxruntime_speedups()
        if speedups:
            lines += ["", "| model | eager PyTorch / onnxruntime |", "| --- | ---: |"]
            lines += [f"| {k} | {v:.2f}x |" for k, v in speedups.items()]
        if self.sweep:
            base = next((r for r in self.sweep if r.topk_ratios and max(r.topk_ratios) == 0.4), self.sweep[0])
            lines += [
                "",
                f"Top-K sweep, {self.sweep[0].model}, eager PyTorch:",
                "",
                "| largest ratio r | branch ratios | GMACs | median (ms) | p90 (ms) | x r = 0.4 |",
                "| ---: | --- | ---: | ---: | ---: | ---: |",
            ]
            for r in self.sweep:
                ratios = r.topk_ratios or ()
                lines.append(
                    f"| {max(ratios):.1f} | {', '.join(f'{v:.3g}' for v in ratios)} | {r.gmacs:.1f} | "
                    f"{1000 * r.median_s:.0f} | {1000 * r.p90_s:.0f} | {r.median_s / base.median_s:.2f} |"
                )
        return "\n".join(lines) + "\n"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)
