"""`fornet eval --weights`: a saved model evaluated on a generated set, whole and sliding-window."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from readonly import unchanged_folder
from typer.testing import CliRunner

from fornet_cli.cli import app
from fornet_cli.data.synth import generate_dataset

runner = CliRunner()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[tuple[Path, Path]]:
    base = tmp_path_factory.mktemp("evalw")
    generate_dataset(base / "data", train=0, val=2, size=(64, 128), seed=2, overwrite=True)
    with unchanged_folder(base / "data", "evaluation set"):
        yield base / "data", model_dir


def test_eval_weights_whole_and_slide(setup: tuple[Path, Path]) -> None:
    data, model = setup
    common = ["eval", "--weights", str(model), "--data", "synth", "--root", str(data), "--json", "-"]
    whole = runner.invoke(app, common)
    assert whole.exit_code == 0, whole.output
    doc = json.loads(whole.stdout)
    assert doc["num_images"] == 2 and doc["source"]["kind"] == "model"
    assert doc["hard_regions"]["selector"] is not None  # a FoR-Net model in whole mode: selector recall
    slide = runner.invoke(app, [*common, "--mode", "slide", "--crop", "64x64", "--stride", "48x48"])
    assert slide.exit_code == 0, slide.output
    assert json.loads(slide.stdout)["source"]["inference"]["mode"] == "slide"


def test_eval_needs_exactly_one_source(setup: tuple[Path, Path], tmp_path: Path) -> None:
    data, model = setup
    result = runner.invoke(app, ["eval", "--root", str(data)])  # neither: the default weights, and there are none
    assert result.exit_code == 1 and result.stderr.startswith("Error: No weights given and no default set.")
    result = runner.invoke(app, ["eval", "--weights", str(model), "--predictions", str(tmp_path), "--root", str(data)])
    flat = " ".join(result.output.replace("│", " ").split())  # the usage error is boxed and wrapped
    assert result.exit_code == 2 and "either --predictions DIR or --weights W, not both" in flat


def test_eval_records_which_cue_chose_the_cells_and_takes_another(setup: tuple[Path, Path]) -> None:
    data, model = setup  # fornet_mbv3 0.4: the first pass's expected errors choose the cells in eval mode
    common = ["eval", "--weights", str(model), "--data", "synth", "--root", str(data), "--runtime", "torch", "--json", "-"]
    docs = {}
    for cue in (None, "none"):
        result = runner.invoke(app, common if cue is None else [*common, "--selector-cue", cue])
        assert result.exit_code == 0, result.output
        docs[cue] = json.loads(result.stdout)
    assert docs[None]["source"]["selector_cue"] == "error_rule" and docs[None]["source"]["inference"]["selector_cue"] is None
    assert docs["none"]["source"]["selector_cue"] == "none"
    recall = {cue: d["hard_regions"]["selector"]["error_recall"] for cue, d in docs.items()}
    assert recall[None] != recall["none"]  # other cells, so other shares of the errors
    bad = runner.invoke(app, [*common, "--selector-cue", "entropy"])
    assert bad.exit_code == 1 and "Unknown selector cue 'entropy'" in bad.stderr
