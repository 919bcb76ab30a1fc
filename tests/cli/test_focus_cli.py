"""`--focus` on the command line: predict equals the library, eval --weights records it, bad values refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fornet_cli.cli import app
from fornet_cli.data.normalize import normalize
from fornet_cli.data.synth import generate_dataset
from fornet_cli.inference.predictor import InferenceConfig, Predictor
from fornet_cli.weights.resolve import load_weights

runner = CliRunner()


@pytest.fixture
def image(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "in" / "a.png"
    path.parent.mkdir()
    Image.fromarray(rng.integers(0, 255, (96, 160, 3), dtype=np.uint8)).save(path)
    return path


def test_predict_with_focus_writes_what_the_library_computes(model_dir: Path, image: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["predict", str(image), "--out", str(out), "-w", str(model_dir), "--runtime", "torch",
            "--focus", "0.25", "--focus-tile", "32", "--focus-halo", "8", "--format", "trainid"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    written = np.array(Image.open(out / "a.png"))
    loaded = load_weights(model_dir)
    x = normalize(np.array(Image.open(image))[None], loaded.meta.mean, loaded.meta.std)
    config = InferenceConfig(runtime="torch", focus=0.25, focus_tile=32, focus_halo=8)
    expected = Predictor(loaded.model, config).labels(x)[0].numpy()
    assert np.array_equal(written, expected)
    plain = Predictor(loaded.model).labels(x)[0].numpy()
    assert not np.array_equal(written, plain)  # focus changed something: the coarse pass shows outside the tiles


def test_eval_weights_records_the_focus_settings(model_dir: Path, tmp_path: Path) -> None:
    generate_dataset(tmp_path / "data", train=0, val=2, size=(64, 128), seed=2, overwrite=True)
    result = runner.invoke(app, ["eval", "--weights", str(model_dir), "--data", "synth", "--root", str(tmp_path / "data"),
                                 "--focus", "0.3", "--focus-tile", "32", "--runtime", "torch", "--json", "-"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["source"]["inference"]["focus"] == 0.3 and doc["source"]["inference"]["focus_tile"] == 32
    assert doc["num_images"] == 2 and doc["hard_regions"]["selector"] is None  # no full-resolution Top-K masks


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (["--focus", "1.5"], 2, "less than or equal to 1"),
        (["--focus", "0.2", "--tta"], 1, "cannot be combined with --tta"),
        (["--focus", "0.2", "--focus-rank", "loudest"], 1, "Unknown focus ranking"),
    ],
)
def test_bad_focus_values(model_dir: Path, image: Path, tmp_path: Path, extra: list[str], code: int, message: str) -> None:
    result = runner.invoke(app, ["predict", str(image), "--out", str(tmp_path / "o"), "-w", str(model_dir), *extra])
    assert result.exit_code == code, result.output
    assert message in " ".join(result.output.replace("│", " ").split())
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
