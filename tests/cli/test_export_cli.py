"""`fornet export` and `fornet predict --weights model.onnx` through the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from readonly import unchanged_folder
from typer.testing import CliRunner

from fornet_cli.cli import app
from fornet_cli.data.labels import TRAIN_ID_TO_COLOR
from fornet_cli.data.scenes import render_scene

runner = CliRunner()


@pytest.fixture(scope="module")
def onnx_file(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("export") / "model.onnx"
    args = ["export", "-w", str(model_dir), "--out", str(path), "--height", "128", "--width", "256", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    with unchanged_folder(path.parent, "onnx_file"):
        yield path


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("images")
    for i, size in enumerate([(64, 96), (48, 80)]):
        Image.fromarray(render_scene(np.random.default_rng(i), size).image).save(root / f"frame{i}.png")
    with unchanged_folder(root, "images"):
        yield root


def _masks(folder: Path) -> dict[str, np.ndarray]:
    return {str(p.relative_to(folder)): np.array(Image.open(p)) for p in sorted(folder.rglob("*.png"))}


def test_export_onnx_reports_its_verification_as_json(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    args = ["export", "-w", str(model_dir), "-o", str(out), "--height", "64", "--width", "128", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["verified"] is True and report["format"] == "onnx" and report["dynamic"] is True
    assert [c["shape"] for c in report["checks"]] == [[1, 3, 64, 128], [2, 3, 32, 64]]
    assert all(c["max_abs_diff"] <= c["tolerance"] for c in report["checks"])
    assert report["bytes"] == out.stat().st_size
    assert "verified against eager PyTorch" in result.stderr and "pass" in result.stderr


def test_predict_with_the_onnx_file_writes_the_same_masks(
    model_dir: Path, onnx_file: Path, images: Path, tmp_path: Path
) -> None:
    outputs = {}
    for name, weights in (("torch", model_dir), ("onnx", onnx_file)):
        out = tmp_path / name
        result = runner.invoke(app, ["predict", str(images), "-o", str(out), "-w", str(weights),
                                     "--format", "trainid,color", "--device", "cpu", "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["written"] == 2
        outputs[name] = _masks(out)
    assert sorted(outputs["onnx"]) == [f"{fmt}/frame{i}.png" for fmt in ("color", "trainid") for i in (0, 1)]
    for key, mask in outputs["torch"].items():
        assert np.array_equal(mask, outputs["onnx"][key]), key
    # The colours come from the palette embedded in the ONNX file.
    train, color = outputs["onnx"]["trainid/frame0.png"], outputs["onnx"]["color/frame0.png"]
    assert np.array_equal(color, TRAIN_ID_TO_COLOR[train])


def test_predict_with_a_static_onnx_file_needs_matching_windows(model_dir: Path, images: Path, tmp_path: Path) -> None:
    path = tmp_path / "static.onnx"
    args = ["export", "-w", str(model_dir), "-o", str(path), "--static", "--height", "64", "--width", "96"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["predict", str(images), "-o", str(tmp_path / "a"), "-w", str(path)])
    assert result.exit_code == 1 and "--mode slide --crop 64x96" in result.stderr
    result = runner.invoke(app, ["predict", str(images), "-o", str(tmp_path / "b"), "-w", str(path),
                                 "--mode", "slide", "--crop", "64x96", "--stride", "48x64"])
    assert result.exit_code == 0, result.output


def test_export_hub_then_predict_from_the_folder(model_dir: Path, images: Path, tmp_path: Path) -> None:
    hub = tmp_path / "hub"
    result = runner.invoke(app, ["export", "-w", str(model_dir), "-f", "hub", "-o", str(hub), "--height", "64", "--width", "96"])
    assert result.exit_code == 0, result.output
    assert "hf upload" in result.stderr and (hub / "README.md").is_file()
    for name, weights in (("a", model_dir), ("b", hub)):
        assert runner.invoke(app, ["predict", str(images), "-o", str(tmp_path / name), "-w", str(weights)]).exit_code == 0
    assert _masks(tmp_path / "a").keys() == _masks(tmp_path / "b").keys()
    for key, mask in _masks(tmp_path / "a").items():
        assert np.array_equal(mask, _masks(tmp_path / "b")[key])


@pytest.mark.parametrize(
    "args, message",
    [
        (["-f", "hub", "--half"], "--half applies to ONNX exports only"),
        (["--opset", "30"], "opsets 11 to 20"),
        (["-f", "zip"], "Unknown export format 'zip'"),
    ],
)
def test_bad_export_options_are_errors(model_dir: Path, tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["export", "-w", str(model_dir), "-o", str(tmp_path / "x"), *args])
    assert result.exit_code == 1 and "Error:" in result.stderr and message in result.stderr
    assert not (tmp_path / "x").exists()


def test_existing_output_needs_overwrite(model_dir: Path, onnx_file: Path) -> None:
    before = onnx_file.read_bytes()
    result = runner.invoke(app, ["export", "-w", str(model_dir), "-o", str(onnx_file)])
    assert result.exit_code == 1 and "--overwrite" in result.stderr
    assert onnx_file.read_bytes() == before


def test_onnx_file_given_to_a_torch_command_says_what_it_is(onnx_file: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", "-w", str(onnx_file), "-o", str(tmp_path / "y.onnx")])
    assert result.exit_code == 1 and "exported ONNX model" in result.stderr


def test_predict_onnx_without_onnxruntime_names_the_extra(onnx_file: Path, images: Path, tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "sys.modules['onnxruntime'] = None  # as if the package were not installed\n"
        "from fornet_cli.cli import main\n"
        f"sys.argv = ['fornet', 'predict', {str(images)!r}, '-o', {str(tmp_path / 'o')!r}, '-w', {str(onnx_file)!r}]\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "Error:" in proc.stderr and "pip install 'fornet-cli[export]'" in proc.stderr
    assert not (tmp_path / "o").exists()
