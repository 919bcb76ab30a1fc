"""Commands that need an optional package say so before any work starts (not after minutes of training)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def _run_without(package: str, argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    code = (
        "import sys\n"
        f"sys.modules[{package!r}] = None  # as if the package were not installed\n"
        "from fornet_cli.cli import main\n"
        f"sys.argv = ['fornet', *{argv!r}]\n"
        "main()\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.mark.parametrize("package", ["onnxruntime", "onnx"])
def test_demo_names_the_missing_extra_before_it_generates_or_trains_anything(package: str, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = _run_without(package, ["demo", "--out", str(out), "--minutes", "0.2"], tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert f"'{package}'" in proc.stderr and "pip install 'fornet-cli[export]'" in proc.stderr
    assert "1/6" not in proc.stderr  # no step started
    assert not out.exists()


def test_export_names_the_missing_extra_before_it_loads_the_weights(tmp_path: Path) -> None:
    # The weights do not exist: the missing package is reported first, so nothing would have been downloaded.
    proc = _run_without("onnxruntime", ["export", "-w", str(tmp_path / "nowhere"), "-o", str(tmp_path / "m.onnx")], tmp_path)
    assert proc.returncode == 1
    assert "'onnxruntime'" in proc.stderr and "pip install 'fornet-cli[export]'" in proc.stderr
    assert "does not exist" not in proc.stderr


def test_torchscript_export_does_not_need_the_extra(tmp_path: Path) -> None:
    proc = _run_without("onnxruntime", ["export", "-w", str(tmp_path / "nowhere"), "-f", "torchscript"], tmp_path)
    assert proc.returncode == 1
    assert "onnxruntime" not in proc.stderr  # it got as far as the weights, which do not exist
