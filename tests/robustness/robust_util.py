"""Helpers of the robustness tests: subprocess runs of the real CLI, and the one check that
every failure is a clean ``Error:`` line with exit code 1 (never a traceback or an "internal error")."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from events import HANG_LIMIT
from typer.testing import CliRunner

from fornet_cli.cli import app

runner = CliRunner()


def invoke(*args: str):
    """``fornet ARGS`` in this process (the real Typer app and its error handler)."""
    return runner.invoke(app, [str(a) for a in args])


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for ``python -m fornet_cli``: one thread (two processes share the 2 CI cores)."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "FORNET_DEBUG": "", **extra}


def run_cli(*args: str, timeout: float = HANG_LIMIT, **popen) -> subprocess.CompletedProcess:
    """``python -m fornet_cli ARGS`` in a fresh process; the timeout only catches a hang."""
    popen.setdefault("env", cli_env())
    cmd = [sys.executable, "-m", "fornet_cli", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **popen)


def run_cli_measured(*args: str, timeout: float = HANG_LIMIT, **popen) -> tuple[subprocess.CompletedProcess, int]:
    """:func:`run_cli`, and the peak resident memory of that process in bytes (its own rusage, from wait4)."""
    popen.setdefault("env", cli_env())
    cmd = [sys.executable, "-m", "fornet_cli", *map(str, args)]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, **popen)
        deadline = time.monotonic() + timeout
        while not (done := os.wait4(proc.pid, os.WNOHANG))[0]:
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise subprocess.TimeoutExpired(cmd, timeout)
            time.sleep(0.02)
        _, status, usage = done
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(cmd, proc.returncode, out.read(), err.read()), usage.ru_maxrss * 1024


def assert_clean_failure(result, *needles: str) -> str:
    """Exit code 1, an ``Error:`` line naming every needle, and no traceback; returns stderr."""
    code = getattr(result, "exit_code", getattr(result, "returncode", None))
    stderr = result.stderr
    assert code == 1, f"exit code {code}\n{stderr[-3000:]}"
    assert "Error:" in stderr, stderr[-3000:]
    for bad in ("Traceback", "internal error", "Original Traceback"):
        assert bad not in stderr, stderr[-3000:]
    flat = " ".join(stderr.split())  # Rich wraps long lines at the console width
    for needle in needles:
        assert " ".join(needle.split()) in flat, f"{needle!r} not in:\n{stderr[-3000:]}"
    return stderr


def train_args(root: Path, out: Path, iters: int, *extra: str) -> list[str]:
    """``fornet train`` for fornet_mbv3 on the tiny data: 64x64 crops, batch 2, a checkpoint every step."""
    return [
        "train", "--root", str(root), "--data", "cityscapes", "--model", "fornet_mbv3", "--no-pretrained",
        "--crop", "64", "--batch", "2", "--iters", str(iters), "--ckpt-every", "1", "--val-every", "1000",
        "--workers", "0", "--lr", "1e-3", "--out", str(out), *extra,
    ]
