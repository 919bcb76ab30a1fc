import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from readonly import tree_digest, unchanged_folder
from typer.testing import CliRunner

from fornet_cli.cli import app
from fornet_cli.data.labels import CLASS_NAMES

runner = CliRunner()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("cli") / "set"
    result = runner.invoke(
        app, ["data", "synth", str(out), "--train", "4", "--val", "2", "--size", "64x128", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "Wrote 6 frames (4 train, 2 val) at 64x128" in result.stderr and " s." in result.stderr
    with unchanged_folder(out, "generated set"):
        yield out


def test_data_is_listed() -> None:
    assert "data" in runner.invoke(app, ["--help"]).output
    result = runner.invoke(app, ["data", "--help"])
    assert result.exit_code == 0 and "synth" in result.output and "check" in result.output


def test_synth_writes_the_layout(generated: Path) -> None:
    assert len(list((generated / "leftImg8bit" / "train").rglob("*_leftImg8bit.png"))) == 4
    assert len(list((generated / "gtFine" / "val").rglob("*_gtFine_labelIds.png"))) == 2


def test_synth_refuses_a_non_empty_folder(generated: Path, tmp_path: Path) -> None:
    taken = shutil.copytree(generated, tmp_path / "taken")  # a copy: the command must not write there, but if it did
    before = tree_digest(taken)
    result = runner.invoke(app, ["data", "synth", str(taken), "--train", "1", "--val", "0"])
    assert result.exit_code == 1 and result.stderr.startswith("Error: ") and "--overwrite" in result.stderr
    assert tree_digest(taken) == before
    assert "Traceback" not in result.output
    out = tmp_path / "again"
    args = ["data", "synth", str(out), "--train", "2", "--val", "0", "--size", "32x64", "--json"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    assert summary["counts"] == {"train": 2, "val": 0} and summary["size"] == [32, 64] and summary["seconds"] > 0
    assert runner.invoke(app, args).exit_code == 1
    assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0


def test_synth_bad_size_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "synth", str(tmp_path / "x"), "--size", "big"])
    assert result.exit_code == 2 and "HEIGHTxWIDTH" in result.output
    result = runner.invoke(app, ["data", "synth", str(tmp_path / "x"), "--size", "8x8"])
    assert result.exit_code == 1 and "too small" in result.stderr


def test_check_prints_counts_and_class_frequencies(generated: Path) -> None:
    result = runner.invoke(app, ["data", "check", str(generated)])
    assert result.exit_code == 0, result.output
    err = result.stderr
    assert result.stdout == ""
    assert "class pixel frequencies" in err and "No problems found." in err
    assert all(name in err for name in CLASS_NAMES)
    assert "128x64: 4" in err


def test_check_json(generated: Path) -> None:
    result = runner.invoke(app, ["data", "check", str(generated), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] and data["problems"] == []
    assert data["splits"]["train"]["images"] == 4 and data["splits"]["val"]["labelled"] == 2
    assert set(data["splits"]["train"]["classes"]) == set(CLASS_NAMES)
    only = json.loads(runner.invoke(app, ["data", "check", str(generated), "--json", "--split", "val"]).stdout)
    assert list(only["splits"]) == ["val"]


def test_check_real_fixture(real_fixtures: Path) -> None:
    result = runner.invoke(app, ["data", "check", str(real_fixtures / "cityscapes-mini"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["splits"]["train"]["images"] == 8 and data["splits"]["train"]["sizes"] == {"2048x1024": 8}
    assert data["splits"]["train"]["classes"]["road"]["fraction"] > 0.2


def test_check_exits_1_on_problems(generated: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(generated, broken)
    label = next((broken / "gtFine" / "train").rglob("*_gtFine_labelIds.png"))
    label.write_bytes(b"")
    result = runner.invoke(app, ["data", "check", str(broken)])
    assert result.exit_code == 1
    assert "Problem:" in result.stderr and label.name in result.stderr and "1 problem(s) found" in result.stderr
    data = json.loads(runner.invoke(app, ["data", "check", str(broken), "--json"]).stdout)
    assert not data["ok"] and len(data["problems"]) == 1


def test_check_root_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, generated: Path) -> None:
    monkeypatch.delenv("FORNET_DEBUG", raising=False)
    result = runner.invoke(app, ["data", "check", str(tmp_path / "nope")])
    assert result.exit_code == 1 and result.stderr.startswith("Error: ") and "does not exist" in result.stderr
    monkeypatch.delenv("CITYSCAPES_DATASET", raising=False)
    result = runner.invoke(app, ["data", "check"])
    assert result.exit_code == 1 and "CITYSCAPES_DATASET" in result.stderr
    monkeypatch.setenv("CITYSCAPES_DATASET", str(generated))
    assert runner.invoke(app, ["data", "check"]).exit_code == 0
    result = runner.invoke(app, ["data", "check", str(generated), "--split", "tset"])
    assert result.exit_code == 1 and "Did you mean 'test'" in result.stderr
