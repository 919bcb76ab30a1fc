import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fornet_cli.cli import app
from fornet_cli.data.synth import generate_dataset

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    generate_dataset(root, train=4, val=1, size=(64, 128), seed=1, overwrite=True)
    return root


def _args(root: Path, out: Path) -> list[str]:
    return ["train", "--data", "cityscapes", "--root", str(root), "--model", "fornet_mbv3", "--crop", "64",
            "--batch", "2", "--iters", "2", "--val-every", "2", "--workers", "0", "--out", str(out)]


def test_train_command_writes_a_run_and_refuses_to_mix_runs(tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = runner.invoke(app, [*_args(tiny_data, out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["iteration"] == 2 and 0 <= summary["best_miou"] <= 1
    assert "val mIoU" in result.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "fornet_mbv3" and config["crop"] == [64, 64] and config["recipe"] == "cpu-quick"
    again = runner.invoke(app, _args(tiny_data, out))
    assert again.exit_code == 1 and "already holds a training run" in again.stderr


def test_unknown_recipe_and_bad_model(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--recipe", "fast", "--out", str(tmp_path / "x")])
    assert result.exit_code == 1 and "Unknown recipe 'fast'" in result.stderr
    result = runner.invoke(app, ["train", "--model", "fornet_r1O1", "--root", str(tmp_path), "--out", str(tmp_path / "y")])
    assert result.exit_code == 1 and result.stderr.startswith("Error:")
