"""`fornet benchmark`: latency, throughput, GMACs and memory of FoR-Net variants next to torchvision peers."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ..benchmark.runner import DEFAULT_MODELS, PEERS, RUNTIMES, BenchmarkConfig, BenchmarkResult, run_benchmark
from ..model import list_models
from .console import err, print_json
from .params import parse_size


def benchmark(
    models: Annotated[str, typer.Option(help=f"Comma-separated fornet variants and/or peers; 'all' for every variant. Peers: {', '.join(PEERS)}.")] = ",".join(DEFAULT_MODELS),
    peers: Annotated[bool, typer.Option("--peers", help="Add torchvision's " + ", ".join(PEERS) + ".")] = False,
    size: Annotated[str, typer.Option(help="Input size HxW.")] = "1024x2048",
    batch: Annotated[int, typer.Option(min=1, help="Images per forward pass.")] = 1,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    runtime: Annotated[str, typer.Option(help=f"Comma-separated: {', '.join(RUNTIMES)} (onnxruntime exports each model to a temporary ONNX file; auto: what predict runs on the device, named in the table; compile: torch.compile).")] = "torch",
    runs: Annotated[int, typer.Option(min=1, help="Timed runs per model (interleaved across models).")] = 5,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed runs per model first.")] = 1,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads for PyTorch and onnxruntime (default: PyTorch's).")] = None,
    channels_last: Annotated[bool, typer.Option("--channels-last", help="channels_last memory format for every eager model and the input.")] = False,
    half: Annotated[bool, typer.Option("--half", help="float16 on CUDA, for every model.")] = False,
    topk_sweep: Annotated[str | None, typer.Option("--topk-sweep", metavar="MODEL", help="Also time MODEL with its Top-K ratios scaled to a largest ratio of 0, 0.1, ..., 1.")] = None,
    memory: Annotated[bool, typer.Option("--memory/--no-memory", help="Measure peak memory (one extra run per model, after timing).")] = True,
    json_out: Annotated[bool, typer.Option("--json", help="Print the results as JSON on stdout.")] = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print markdown tables on stdout (for docs).")] = False,
) -> None:
    """Time models in one process, interleaved, so that their ratios are fair on a busy machine."""
    if json_out and markdown:
        raise typer.BadParameter("choose one of --json and --markdown (both print on stdout).", param_hint="--json")
    names = [m.strip() for m in models.split(",") if m.strip()]
    if names == ["all"]:
        names = list_models()
    config = BenchmarkConfig(
        models=tuple(names), peers=peers, size=parse_size(size), batch=batch, device=device,
        runtimes=tuple(r.strip() for r in runtime.split(",") if r.strip()), runs=runs, warmup=warmup,
        threads=threads, channels_last=channels_last, half=half, topk_sweep=topk_sweep, memory=memory,
    )
    with err.status("benchmarking") as status:
        result = run_benchmark(config, progress=lambda message: status.update(message))
    _tables(result)
    if json_out:
        print_json(result.to_dict())
    if markdown:
        typer.echo(result.markdown(), nl=False)


def _tables(result: BenchmarkResult) -> None:
    m, c = result.machine, result.config
    h, w = c.size
    caption = (f"{m['device']}, {m['threads']} threads, torch {m['torch']}; input {c.batch}x3x{h}x{w}; "
               f"median/p90 of {c.runs} interleaved runs; load {m['load_before']} -> {m['load_after']}")
    if result.rows:
        ref = result.reference()
        if ref is not None:
            caption += f"; x ref = median / median of {ref.label}"
        table = Table(title="fornet benchmark", caption=caption)
        cols = ("model", "origin", "runtime", "params", "GMACs", "median ms", "p90 ms", "images/s", "peak MiB", "x ref")
        for col in cols:
            left = col in ("model", "origin", "runtime")
            table.add_column(col, justify="left" if left else "right", no_wrap=left)
        for r in result.rows:
            ratio = result.ratio(r)
            table.add_row(
                r.model, r.origin, r.runtime, f"{r.parameters / 1e6:.2f}M", f"{r.gmacs:.1f}",
                f"{1000 * r.median_s:.0f}", f"{1000 * r.p90_s:.0f}", f"{r.images_per_s:.2f}",
                "-" if r.peak_memory_mib is None else f"{r.peak_memory_mib:.0f}",
                "-" if ratio is None else f"{ratio:.2f}",
            )
        err.print(table)
    speedups = result.onnxruntime_speedups()
    if speedups:
        table = Table(title="onnxruntime vs eager PyTorch")
        table.add_column("model")
        table.add_column("eager / onnxruntime", justify="right")
        for name, value in speedups.items():
            table.add_row(name, f"{value:.2f}x")
        err.print(table)
    if result.sweep:
        table = Table(title=f"Top-K sweep: {result.sweep[0].model} (eager PyTorch)", caption=caption)
        for col in ("largest ratio", "branch ratios", "GMACs", "median ms", "p90 ms"):
            table.add_column(col, justify="left" if col == "branch ratios" else "right")
        for r in result.sweep:
            ratios = r.topk_ratios or ()
            table.add_row(f"{max(ratios):.1f}", ", ".join(f"{v:.3g}" for v in ratios), f"{r.gmacs:.1f}",
                          f"{1000 * r.median_s:.0f}", f"{1000 * r.p90_s:.0f}")
        err.print(table)
