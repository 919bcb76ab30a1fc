"""`fornet predict images/ --out masks/` without --weights: the default weights, where they come from, and the
one-line error when there are none. Every test has its own empty settings folder (tests/conftest.py)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fornet_cli.cli import app
from fornet_cli.data.io import write_png

runner = CliRunner()


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    for i in range(2):
        write_png(folder / f"im{i}.png", np.full((32, 64, 3), 60 * i, np.uint8))
    return folder


def test_no_default_anywhere_is_one_line_that_says_how_to_get_weights(images: Path, tmp_path: Path) -> None:
    for command in (["predict", str(images), "--out", str(tmp_path / "o")], ["export"],
                    ["show-hardness", str(images), "--out", str(tmp_path / "s")], ["eval", "--data", "synth"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 1, (command, result.output)
        lines = result.stderr.strip().splitlines()
        assert lines[-1].startswith("Error: No weights given and no default set. Pass --weights"), command
        assert "`fornet weights default REF`" in lines[-1] and "`fornet demo`" in lines[-1] and "hf://" in lines[-1]
    shown = runner.invoke(app, ["weights", "default"])
    assert shown.exit_code == 0 and "No default weights" in shown.stderr
    assert json.loads(runner.invoke(app, ["weights", "default", "--json"]).stdout) is None


def test_set_use_override_and_unset_the_default(model_dir: Path, images: Path, tmp_path: Path,
                                                _own_settings: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(model_dir.parent)
    result = runner.invoke(app, ["weights", "default", model_dir.name])  # relative: stored absolute
    assert result.exit_code == 0, result.output
    stored = tomllib.loads((_own_settings / "config.toml").read_text())
    assert stored == {"weights": {"default": str(model_dir.resolve())}}
    assert "fornet weights default --unset" in result.stderr
    shown = json.loads(runner.invoke(app, ["weights", "default", "--json"]).stdout)
    assert shown["ref"] == str(model_dir.resolve()) and shown["from"].startswith("your settings")

    out = tmp_path / "masks"
    result = runner.invoke(app, ["predict", str(images), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert f"Weights: {model_dir.resolve()} (the default, from your settings" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["written"] == 2 and summary["weights"]["from"].startswith("your settings")
    assert sorted(p.name for p in out.iterdir()) == ["im0.png", "im1.png"]

    monkeypatch.setenv("FORNET_WEIGHTS_DEFAULT", "hf://org/elsewhere")  # the variable wins over the setting
    assert json.loads(runner.invoke(app, ["weights", "default", "--json"]).stdout) == {
        "ref": "hf://org/elsewhere", "from": "$FORNET_WEIGHTS_DEFAULT"}
    monkeypatch.delenv("FORNET_WEIGHTS_DEFAULT")
    result = runner.invoke(app, ["weights", "default", "--unset"])
    assert result.exit_code == 0 and "Unset" in result.stderr
    assert json.loads(runner.invoke(app, ["weights", "default", "--json"]).stdout) is None


def test_the_registry_default_entry_and_bad_references(tmp_path: Path, _own_settings: Path) -> None:
    registry = tmp_path / "weights.toml"
    registry.write_text('[mine]\nkind = "fornet"\nrepo_id = "org/mine"\nfilename = "model.safetensors"\n'
                        'config_filename = "config.json"\nrevision = "main"\narchitecture = "fornet_mbv3"\n'
                        'classes = 19\nlicense = "mit"\nsource = "ours"\ndefault = true\n')
    shown = json.loads(runner.invoke(app, ["weights", "default", "--json", "--registry", str(registry)]).stdout)
    assert shown["ref"] == "mine" and "registry's default entry" in shown["from"]
    result = runner.invoke(app, ["weights", "default", "mnie", "--registry", str(registry)])
    assert result.exit_code == 1 and "Did you mean 'mine'" in result.stderr
    result = runner.invoke(app, ["weights", "default", str(tmp_path / "missing" / "run")])
    assert result.exit_code == 1 and "does not exist" in result.stderr
    assert not (_own_settings / "config.toml").exists()  # nothing was stored
    (_own_settings / "config.toml").write_text("[weights\n")
    result = runner.invoke(app, ["weights", "default"])
    assert result.exit_code == 1 and "are not valid TOML" in result.stderr and "Fix or delete the file" in result.stderr
