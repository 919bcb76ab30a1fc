"""kill -9 a real `fornet train` process at random moments, 20 times, resuming after each kill: every resume
starts from a checkpoint that loads, and the final weights equal those of a run that was never interrupted."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from events import HANG_LIMIT, StderrLines, replaced, wait_for
from robust_util import cli_env, train_args

from fornet_cli.weights.checkpoint import load_checkpoint

KILLS = 20
ITERS = 80  # kills are timed by checkpoints: at most 4 steps pass between two, so 20 runs cannot finish it


def _launch(args: list[str], log: Path) -> tuple[subprocess.Popen, StderrLines]:
    """Start ``fornet ARGS``, its stderr collected (and appended to ``log``)."""
    proc = subprocess.Popen([sys.executable, "-m", "fornet_cli", *args], env=cli_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    return proc, StderrLines(proc, log)


@pytest.mark.slow
def test_twenty_kills_then_resume_equals_an_uninterrupted_run(tiny_data: Path, tmp_path: Path) -> None:
    reference, reference_err = _launch(train_args(tiny_data, tmp_path / "straight", ITERS), tmp_path / "straight.log")
    run = tmp_path / "killed"
    last = run / "checkpoints" / "last.pt"
    rng = random.Random(10)
    seen: list[int] = []  # the checkpoint's iteration after each kill (None before the first one)
    for kill in range(KILLS):
        resume = last.is_file()
        if resume:  # what the next process will resume from must load
            assert load_checkpoint(last)["iteration"] == seen[-1]
        proc, err = _launch(train_args(tiny_data, run, ITERS, *(["--resume", str(run)] if resume else ["--force"])),
                            tmp_path / "killed.log")
        started = err.seen("Training on")  # its first line: the training loop has started
        if rng.random() < 0.25:  # during start-up (imports, data, loading the checkpoint): at the latest when it ends
            _until_or_started(started, rng.uniform(0.3, 3.0), proc, err)
        else:  # during training, timed by its checkpoints: a step here is mostly writing the checkpoint
            wait_for(started, "the training loop to start", proc, context=err.text)
            wait_for(replaced(last, rng.randint(0, 3)), "its next checkpoints", proc, context=err.text)
            time.sleep(rng.uniform(0.0, 0.15))  # a jitter within a step, so that kills land anywhere in it
        assert proc.poll() is None, f"run {kill} ended before its kill:\n" + err.text()[-2000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if last.is_file():
            iteration = load_checkpoint(last)["iteration"]  # never half-written: it loads after every kill
            assert not seen or iteration >= seen[-1], "a kill must never lose a checkpoint already written"
            seen.append(iteration)
    assert seen and seen[-1] < ITERS
    final, final_err = _launch(train_args(tiny_data, run, ITERS, "--resume", str(run)), tmp_path / "killed.log")
    assert final.wait(HANG_LIMIT) == 0, final_err.text()[-3000:]
    assert reference.wait(HANG_LIMIT) == 0, reference_err.text()[-3000:]

    ours, theirs = load_checkpoint(last), load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")
    assert ours["iteration"] == theirs["iteration"] == ITERS
    assert ours["model"].keys() == theirs["model"].keys()
    assert [k for k in ours["model"] if not torch.equal(ours["model"][k], theirs["model"][k])] == []
    assert not list(run.rglob("*.tmp")), "temporary files of killed writers must be cleaned on resume"
    steps = [json.loads(line)["iter"] for line in (run / "log.jsonl").read_text().splitlines() if '"loss"' in line]
    assert steps == sorted(set(steps)) and steps[-1] == ITERS, "each logged step once, in order, after 20 resumes"
    assert len({s for s in seen}) > 5, f"the kills should land at many different iterations: {seen}"


def _until_or_started(started, seconds: float, proc: subprocess.Popen, err: StderrLines) -> None:
    """Wait ``seconds``, or less if the training loop starts first: the kill then lands in the start-up (or at
    the very start of training on a fast machine), whatever the machine's speed."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not started() and proc.poll() is None:
        time.sleep(0.005)
