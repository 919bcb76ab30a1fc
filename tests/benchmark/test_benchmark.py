"""`fornet benchmark` on tiny inputs: the table, the JSON and the markdown hold every model and the peers.

Speed is measured in benchmarks/, never asserted here; these tests check what is reported and how."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from typer.testing import CliRunner

from fornet_cli.benchmark.memory import cpu_peak_supported, peak_memory_mib
from fornet_cli.benchmark.runner import (
    PEERS,
    SWEEP_POINTS,
    BenchmarkConfig,
    build_peer,
    run_benchmark,
    sweep_ratios,
)
from fornet_cli.cli import app
from fornet_cli.errors import ConfigError, UnknownModelError
from fornet_cli.model.complexity import count_parameters

runner = CliRunner()
TINY = (64, 96)


def test_peers_are_benchmarked_with_the_variants() -> None:
    result = run_benchmark(BenchmarkConfig(models=("fornet_mbv3",), peers=True, size=TINY, runs=2, warmup=0, memory=False))
    assert [r.model for r in result.rows] == ["fornet_mbv3", *PEERS]
    assert [r.origin for r in result.rows] == ["ours", "peer", "peer", "peer"]
    assert all(len(r.times) == 2 and r.median_s > 0 and r.p90_s >= r.median_s for r in result.rows)
    peers = {r.model: r for r in result.rows}
    for name in PEERS:  # built as torchvision builds them, with 19 classes
        assert peers[name].parameters == count_parameters(build_peer(name))
    assert peers["deeplabv3_resnet50"].gmacs > peers["lraspp_mobilenet_v3_large"].gmacs > 0
    assert result.ratio(peers["lraspp_mobilenet_v3_large"]) == 1.0
    data = json.loads(json.dumps(result.to_dict()))
    assert data["reference"] == "lraspp_mobilenet_v3_large (torch)"
    assert data["machine"]["threads"] == torch.get_num_threads() and data["machine"]["logical_cpus"] >= 1
    md = result.markdown()
    assert "| model | origin | runtime |" in md and all(f"| {name} |" in md for name in ["fornet_mbv3", *PEERS])


def test_onnxruntime_rows_come_with_their_speedup_over_eager() -> None:
    result = run_benchmark(BenchmarkConfig(models=("fornet_mbv3",), size=TINY, runs=1, warmup=1, runtimes=("torch", "onnxruntime")))
    assert [(r.model, r.runtime) for r in result.rows] == [("fornet_mbv3", "torch"), ("fornet_mbv3", "onnxruntime")]
    speedup = result.onnxruntime_speedups()["fornet_mbv3"]
    assert speedup == pytest.approx(result.rows[0].median_s / result.rows[1].median_s)
    if cpu_peak_supported():
        assert all(r.peak_memory_mib is not None and r.peak_memory_mib >= 0 for r in result.rows)
    assert "eager PyTorch / onnxruntime" in result.markdown()


def test_topk_sweep_scales_the_variant_ratios() -> None:
    assert sweep_ratios((0.1, 0.2, 0.3, 0.4), 0.4) == (0.1, 0.2, 0.3, 0.4)
    assert sweep_ratios((0.1, 0.2, 0.3, 0.4), 1.0) == (0.25, 0.5, 0.75, 1.0)
    assert sweep_ratios((0.1, 0.2, 0.3, 0.4), 0.0) == (0.0, 0.0, 0.0, 0.0)
    result = run_benchmark(BenchmarkConfig(models=(), topk_sweep="fornet_mbv3", size=TINY, runs=1, warmup=0))
    assert result.rows == [] and len(result.sweep) == len(SWEEP_POINTS)
    assert [max(r.topk_ratios) for r in result.sweep] == list(SWEEP_POINTS)
    off, *on = result.sweep
    # The branches run densely on the masked feature: any ratio > 0 costs the same MACs, 0 skips them.
    assert all(r.gmacs == on[0].gmacs for r in on) and off.gmacs < on[0].gmacs
    assert "Top-K sweep, fornet_mbv3" in result.markdown()


def test_bad_configurations_are_refused() -> None:
    with pytest.raises(UnknownModelError, match="fornet_mbv3"):
        BenchmarkConfig(models=("fornet_tiny",))
    with pytest.raises(ConfigError, match="runtime"):
        BenchmarkConfig(runtimes=("tensorrt",))
    with pytest.raises(ConfigError, match="CUDA"):
        BenchmarkConfig(half=True)


@pytest.mark.skipif(not sys.platform.startswith("linux") or not cpu_peak_supported(), reason="needs Linux VmHWM")
def test_peak_memory_sees_a_64_mib_allocation() -> None:
    peak = peak_memory_mib(lambda: torch.ones(16 * 2**20).sum())  # 64 MiB of float32, touched
    assert peak is not None and 60 < peak < 200, peak


def test_cli_table_on_stderr_and_json_on_stdout() -> None:
    result = runner.invoke(app, ["benchmark", "--models", "fornet_mbv3", "--peers", "--size", "64x96", "--runs", "1",
                                 "--warmup", "0", "--no-memory", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [r["model"] for r in data["rows"]] == ["fornet_mbv3", *PEERS]
    assert data["config"]["size"] == [64, 96] and data["rows"][1]["vs_reference"] == 1.0
    assert "fornet benchmark" in result.stderr and "lraspp_mobilenet_v3_large" in result.stderr


def test_cli_markdown_and_usage_errors() -> None:
    result = runner.invoke(app, ["benchmark", "--models", "fornet_mbv3", "--size", "64x96", "--runs", "1", "--warmup", "0",
                                 "--no-memory", "--markdown"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith("Input 1x3x64x96") and "| fornet_mbv3 | ours | torch |" in result.stdout
    both = runner.invoke(app, ["benchmark", "--json", "--markdown"])
    assert both.exit_code == 2
    unknown = runner.invoke(app, ["benchmark", "--models", "fornet_r19", "--size", "64x96"])
    assert unknown.exit_code == 1 and "fornet_r18" in unknown.stderr


def test_auto_and_compile_rows_name_what_runs() -> None:
    pytest.importorskip("onnxruntime")
    from fornet_cli.benchmark.runner import BenchmarkConfig, run_benchmark

    config = BenchmarkConfig(models=("fornet_mbv3",), size=(64, 128), runtimes=("torch", "auto", "compile"), runs=1,
                             warmup=1, memory=False)
    rows = run_benchmark(config).rows
    assert [r.runtime for r in rows] == ["torch", "compile", "auto: onnxruntime"]  # auto: what predict runs on a CPU
    assert all(len(r.times) == 1 and r.times[0] > 0 for r in rows)
