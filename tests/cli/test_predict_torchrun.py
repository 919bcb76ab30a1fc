"""`torchrun --nproc-per-node 2 fornet predict ...`: two gloo ranks on the CPU share the images, each file is
written once, none is missed, and rank 0 reports the whole run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from events import HANG_LIMIT
from PIL import Image
from typer.testing import CliRunner

from fornet_cli.cli import app
from fornet_cli.errors import ConfigError
from fornet_cli.inference.predict import shard

runner = CliRunner()


def test_shards_are_disjoint_and_cover_everything() -> None:
    items = list(range(11))
    for world in (1, 2, 3, 4, 12):
        shares = [shard(items, rank, world) for rank in range(world)]
        assert sorted(i for s in shares for i in s) == items
        assert max(map(len, shares)) - min(map(len, shares)) <= 1
    with pytest.raises(ConfigError):
        shard(items, 2, 2)


@pytest.mark.slow
def test_two_gloo_ranks_write_every_mask_once(model_dir: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    inputs = tmp_path / "in"
    names = [f"{d}/img{i}.png" for i, d in enumerate("aabbbcc")]
    for i, name in enumerate(names):
        (inputs / name).parent.mkdir(parents=True, exist_ok=True)
        size = (64, 96) if i % 3 else (48, 80)  # two sizes, so that batching meets both
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(inputs / name)
    out = tmp_path / "sharded"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "fornet_cli",
           "predict", str(inputs), "--out", str(out), "-w", str(model_dir), "--json", "--batch", "2"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=HANG_LIMIT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads(proc.stdout)  # rank 0 alone prints
    assert summary["images"] == summary["written"] == 7 and summary["failed"] == []
    assert [(s["rank"], s["images"], s["written"]) for s in summary["shards"]] == [(0, 4, 4), (1, 3, 3)]
    assert summary["runtime"]["name"] == "onnxruntime"
    assert proc.stderr.count("Runtime:") == 1
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == sorted(names)
    single = tmp_path / "single"
    assert runner.invoke(app, ["predict", str(inputs), "--out", str(single), "-w", str(model_dir)]).exit_code == 0
    for name in names:
        a, b = np.array(Image.open(out / name)), np.array(Image.open(single / name))
        assert a.shape == b.shape and (a == b).mean() >= 0.999
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=HANG_LIMIT)
    assert again.returncode == 0 and json.loads(again.stdout)["skipped_existing"] == 7  # nothing written twice
