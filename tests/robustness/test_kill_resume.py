"""kill -9 a real `fornet train` process at random moments, 20 times, resuming after each kill: every resume
starts from a checkpoint that loads, and the final weights equal those of a run that was never interrupted."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from robust_util import cli_env, train_args

from fornet_cli.weights.checkpoint import load_checkpoint

KILLS = 20
ITERS = 80  # kills are timed by checkpoints: at most 4 steps pass between two, so 20 runs cannot finish it


def _checkpoint_id(path: Path) -> int | None:
    """The inode of ``last.pt``: every checkpoint write replaces the file (a new inode)."""
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


def _wait_for_checkpoints(path: Path, n: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    """Wait until ``last.pt`` has been replaced ``n`` times (or the process ended)."""
    deadline = time.monotonic() + timeout
    current = _checkpoint_id(path)
    while n > 0 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
        now = _checkpoint_id(path)
        if now != current:
            current, n = now, n - 1


def _launch(args: list[str], log: Path) -> tuple[subprocess.Popen, threading.Event]:
    """Start ``fornet ARGS``; the event is set once its training loop has started (its first stderr line)."""
    proc = subprocess.Popen([sys.executable, "-m", "fornet_cli", *args], env=cli_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    started = threading.Event()

    def pump() -> None:
        with open(log, "a", encoding="utf-8") as fh:
            for line in proc.stderr:  # type: ignore[union-attr]
                fh.write(line)
                if line.startswith("Training on"):
                    started.set()

    threading.Thread(target=pump, daemon=True).start()
    return proc, started


@pytest.mark.slow
def test_twenty_kills_then_resume_equals_an_uninterrupted_run(tiny_data: Path, tmp_path: Path) -> None:
    t0 = time.monotonic()
    reference, _ = _launch(train_args(tiny_data, tmp_path / "straight", ITERS), tmp_path / "straight.log")
    run = tmp_path / "killed"
    last = run / "checkpoints" / "last.pt"
    rng = random.Random(10)
    seen: list[int] = []  # the checkpoint's iteration after each kill (None before the first one)
    for kill in range(KILLS):
        resume = last.is_file()
        if resume:  # what the next process will resume from must load
            assert load_checkpoint(last)["iteration"] == seen[-1]
        proc, started = _launch(train_args(tiny_data, run, ITERS, *(["--resume", str(run)] if resume else ["--force"])),
                                tmp_path / "killed.log")
        if rng.random() < 0.25:  # during start-up: imports, data, loading the checkpoint
            time.sleep(rng.uniform(0.3, 3.0))
        else:  # during training, timed by its checkpoints: a step here is mostly writing the checkpoint
            assert started.wait(60), (tmp_path / "killed.log").read_text()[-2000:]
            _wait_for_checkpoints(last, rng.randint(0, 3), proc)
            time.sleep(rng.uniform(0.0, 0.15))
        assert proc.poll() is None, f"run {kill} ended before its kill:\n" + (tmp_path / "killed.log").read_text()[-2000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if last.is_file():
            iteration = load_checkpoint(last)["iteration"]  # never half-written: it loads after every kill
            assert not seen or iteration >= seen[-1], "a kill must never lose a checkpoint already written"
            seen.append(iteration)
    assert seen and seen[-1] < ITERS
    final, _ = _launch(train_args(tiny_data, run, ITERS, "--resume", str(run)), tmp_path / "killed.log")
    assert final.wait(300) == 0, (tmp_path / "killed.log").read_text()[-3000:]
    assert reference.wait(300) == 0, (tmp_path / "straight.log").read_text()[-3000:]

    ours, theirs = load_checkpoint(last), load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")
    assert ours["iteration"] == theirs["iteration"] == ITERS
    assert ours["model"].keys() == theirs["model"].keys()
    assert [k for k in ours["model"] if not torch.equal(ours["model"][k], theirs["model"][k])] == []
    assert not list(run.rglob("*.tmp")), "temporary files of killed writers must be cleaned on resume"
    steps = [json.loads(line)["iter"] for line in (run / "log.jsonl").read_text().splitlines() if '"loss"' in line]
    assert steps == sorted(set(steps)) and steps[-1] == ITERS, "each logged step once, in order, after 20 resumes"
    assert len({s for s in seen}) > 5, f"the kills should land at many different iterations: {seen}"
    assert time.monotonic() - t0 < 240
