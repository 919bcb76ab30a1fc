"""Training: resume equality, checkpoints, run-folder rules, schedule, and DDP with 2 gloo processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from events import HANG_LIMIT, replaced, wait_for, writing
from readonly import unchanged_folder

from fornet_cli.data.synth import generate_dataset
from fornet_cli.errors import ConfigError, DataError
from fornet_cli.training.config import TrainConfig, recipe
from fornet_cli.training.loop import EpochSampler, TrainingError, lr_factor, train
from fornet_cli.weights.checkpoint import load_checkpoint
from fornet_cli.weights.resolve import load_weights

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("synth")
    generate_dataset(root, train=6, val=2, size=(64, 128), seed=0, overwrite=True)
    with unchanged_folder(root, "tiny_data"):
        yield root


def tiny_config(root: Path, **changes) -> TrainConfig:
    base = TrainConfig(
        model="fornet_mbv3", data="cityscapes", root=str(root), crop=(64, 64), scale_range=(0.75, 1.25),
        batch=2, iters=6, lr=1e-3, warmup_iters=2, val_every=1000, ckpt_every=3, log_every=1, workers=0, seed=0,
    )
    return replace(base, **changes)


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_resume_continues_exactly(tiny_data: Path, tmp_path: Path) -> None:
    config = tiny_config(tiny_data)
    straight = train(config, tmp_path / "straight")
    first = train(config, tmp_path / "resumed", stop_at=3)
    assert first.iteration == 3 and load_checkpoint(first.last_checkpoint)["iteration"] == 3
    second = train(config, tmp_path / "resumed", resume=True)
    assert second.iteration == 6
    a, b = _weights(straight.model), _weights(second.model)
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert different == []
    # and the checkpoint loads as --weights, with the run's metadata
    loaded = load_weights(tmp_path / "resumed")
    assert loaded.meta.num_classes == 19 and loaded.meta.extra["training"]["iters"] == 6
    log = (tmp_path / "resumed" / "log.jsonl").read_text().splitlines()
    steps = [int(line.split('"iter": ')[1].split(",")[0]) for line in log if '"loss"' in line]
    assert steps == [1, 2, 3, 4, 5, 6], "the log holds each step once after a resume"


def test_loader_processes_do_not_change_the_result(tiny_data: Path, tmp_path: Path) -> None:
    """Augmentation randomness is seeded per sample, not per process: --workers only changes speed."""
    config = tiny_config(tiny_data, iters=3, ckpt_every=3)
    a = _weights(train(config, tmp_path / "w0").model)
    b = _weights(train(replace(config, workers=2), tmp_path / "w2").model)
    assert [k for k in a if not torch.equal(a[k], b[k])] == []


def test_validation_writes_best_checkpoint_and_metrics(tiny_data: Path, tmp_path: Path) -> None:
    result = train(tiny_config(tiny_data, iters=4, val_every=2), tmp_path / "run")
    assert [h["iter"] for h in result.history] == [2, 4]
    assert all(0.0 <= h["miou"] <= 1.0 for h in result.history)
    assert (tmp_path / "run" / "checkpoints" / "best.pt").is_file()
    assert (tmp_path / "run" / "best_metrics.json").is_file()
    assert result.best_miou == max(h["miou"] for h in result.history)


def test_run_folder_rules(tiny_data: Path, tmp_path: Path) -> None:
    config = tiny_config(tiny_data, iters=1, ckpt_every=1)
    train(config, tmp_path / "run")
    with pytest.raises(ConfigError, match="already holds a training run"):
        train(config, tmp_path / "run")
    train(config, tmp_path / "run", force=True)  # starts over
    with pytest.raises(ConfigError, match="Nothing to resume"):
        train(config, tmp_path / "empty", resume=True)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="Cannot write to the output folder"):
        train(config, blocker / "run")


def test_dataset_smaller_than_a_batch(tiny_data: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="fewer than one batch"):
        train(tiny_config(tiny_data, batch=8), tmp_path / "run")


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny_data: Path, tmp_path: Path) -> None:
    config = tiny_config(tiny_data, iters=6, ckpt_every=1, lr=1e30, warmup_iters=0, head_lr_mult=1.0)
    with pytest.raises(TrainingError, match=r"at iteration \d+") as info:
        train(config, tmp_path / "run")
    assert "last good checkpoint" in str(info.value)
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    if last.is_file():
        state = load_checkpoint(last)
        assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_schedule_and_weight_decay_groups(tiny_data: Path) -> None:
    config = tiny_config(tiny_data, iters=100, warmup_iters=10, warmup_start=0.1, poly_power=1.0)
    assert lr_factor(0, config) == pytest.approx(0.1)
    assert lr_factor(5, config) == pytest.approx(0.55)
    assert lr_factor(10, config) == pytest.approx(0.9)
    assert lr_factor(100, config) == 0.0
    from fornet_cli import create_model
    from fornet_cli.training.optim import param_groups as _param_groups

    groups = _param_groups(create_model("fornet_mbv3"), replace(config, lr=0.01, head_lr_mult=10.0))
    for g in groups:
        one_d = all(p.ndim <= 1 for p in g["params"])
        assert (g["weight_decay"] == 0.0) == one_d
    assert sorted({g["lr"] for g in groups}) == [0.01, 0.1]


def test_sampler_shards_are_disjoint_and_resume_mid_epoch() -> None:
    a, b = EpochSampler(10, 2, 2, 0, seed=3), EpochSampler(10, 2, 2, 1, seed=3)
    ia, ib = a.indices(4), b.indices(4)
    assert not set(ia) & set(ib) and len(ia) == len(ib) == 4  # 10 // (2 * 2) = 2 steps of 2 per rank
    a.set_position(4, skip_batches=1)
    assert [i for _, i in a] == ia[2:]
    assert a.indices(5) != ia  # a new permutation each epoch


def test_recipes_are_valid() -> None:
    paper = recipe("paper")
    assert (paper.model, paper.optimizer, paper.crop, paper.pretrained) == ("fornet_r101", "adamw", (768, 768), True)
    assert recipe("cpu-quick").data == "synth"
    with pytest.raises(ConfigError, match="Unknown recipe"):
        recipe("fast")


def _train_cmd(root: Path, out: Path, iters: int) -> list[str]:
    return [
        sys.executable, "-m", "fornet_cli", "train", "--root", str(root), "--data", "cityscapes", "--model",
        "fornet_mbv3", "--crop", "64", "--batch", "2", "--iters", str(iters), "--ckpt-every", "1",
        "--val-every", "1000", "--workers", "0", "--lr", "1e-3", "--out", str(out),
    ]


def _more_steps_logged(log: Path):
    """A condition: log.jsonl holds more step lines than now."""

    def steps() -> int:
        try:
            return log.read_text(encoding="utf-8").count('"loss"')
        except FileNotFoundError:
            return 0

    before = steps()
    return lambda: steps() > before


@pytest.mark.slow
def test_kill_during_training_never_leaves_a_corrupt_checkpoint(tiny_data: Path, tmp_path: Path) -> None:
    """kill -9 at three moments of a run, each one an event of the run itself (never a delay that hopes): right
    after its first checkpoint, while it writes a checkpoint (its temporary file exists), and after it logged a
    step. Every time, last.pt loads and never goes back."""
    out = tmp_path / "run"
    last, log = out / "checkpoints" / "last.pt", out / "log.jsonl"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    moments = [
        ("its first checkpoint", lambda pid: replaced(last)),
        ("it writes a checkpoint", lambda pid: writing(last, pid)),
        ("it logs a step", lambda pid: _more_steps_logged(log)),
    ]
    iterations = []
    for i, (moment, event) in enumerate(moments):
        cmd = _train_cmd(tiny_data, out, iters=400) + (["--resume", str(out)] if i else [])
        stderr = tmp_path / f"stderr{i}.txt"
        with open(stderr, "w") as err:
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        try:
            wait_for(event(proc.pid), moment, proc, context=lambda stderr=stderr: stderr.read_text()[-3000:])
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        iterations.append(load_checkpoint(last)["iteration"])  # loads: never half-written
    assert iterations[0] >= 1 and iterations == sorted(iterations), iterations


@pytest.mark.slow
def test_ddp_two_gloo_processes_end_with_identical_weights(tiny_data: Path, tmp_path: Path) -> None:
    script = ROOT / "tests" / "training" / "ddp_worker.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
           str(tiny_data), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=HANG_LIMIT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    from safetensors.torch import load_file

    w0, w1 = load_file(str(tmp_path / "rank0.safetensors")), load_file(str(tmp_path / "rank1.safetensors"))
    assert w0.keys() == w1.keys()
    assert [k for k in w0 if not torch.equal(w0[k], w1[k])] == []
    shards = [set(map(int, (tmp_path / f"indices{r}.txt").read_text().split())) for r in (0, 1)]
    assert shards[0] and shards[1] and not shards[0] & shards[1]
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()
