"""benchmarks/gpu_check.py runs on the CPU at a tiny size, so that the one-call GPU check cannot rot between
the sessions that have a GPU: every section runs (DDP over NCCL says why it is skipped), and the report's
JSON and markdown are written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from events import HANG_LIMIT

from fornet_cli.model import list_models

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_check_runs_every_section_at_a_tiny_size_on_the_cpu(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--tiny", "--device", "cpu", "--out", str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3 * HANG_LIMIT, cwd=tmp_path)
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    sections = report["sections"]
    failed = {k: v.get("error") for k, v in sections.items() if v["status"] == "failed"}
    assert proc.returncode == 0 and not failed, (failed, proc.stderr[-3000:])
    assert list(sections) == ["train", "ddp", "eval_predict", "latency", "compile"]
    assert sections["ddp"]["status"] == "skipped" and "2 or more CUDA GPUs" in sections["ddp"]["reason"]
    trained = {(r["model"], r["amp"]) for r in sections["train"]["rows"]}
    assert trained == {(m, amp) for m in list_models() for amp in ("off", "bf16")}  # every registered variant
    assert all(r["iteration"] == 2 for r in sections["train"]["rows"])
    runs = {(r["command"], r["runtime"], r["check_passed"]) for r in sections["eval_predict"]["rows"]}
    assert runs == {("eval", "onnxruntime", True), ("predict", "onnxruntime", True),
                    ("predict --focus 0.3", "onnxruntime", True)}  # focus: the tile graph checked too
    latency = sections["latency"]["rows"]
    assert {(r["model"], r["batch"], r["precision"]) for r in latency} >= {
        ("fornet_mbv3", 2, "bfloat16"), ("lraspp_mobilenet_v3_large", 1, "float32")}
    assert all(r["median_ms"] > 0 for r in latency)
    (compiled,) = sections["compile"]["rows"]
    assert compiled["model"] == "fornet_mbv3" and compiled["check_passed"] and compiled["compile_ms"] > 0
    markdown = (tmp_path / "gpu_check.md").read_text()
    assert "| train | ok |" in markdown and "| ddp | skipped |" in markdown and "| fornet_mbv3 |" in markdown
