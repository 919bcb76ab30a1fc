"""`fornet show-hardness`: figures with and without ground truth, the gallery, the summary, refusals."""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
import torch
from PIL import Image
from readonly import unchanged_folder
from safetensors.torch import save_file
from typer.testing import CliRunner

from fornet_cli.cli import app
from fornet_cli.data.labels import CLASS_NAMES, TRAIN_ID_TO_COLOR
from fornet_cli.data.synth import generate_dataset
from fornet_cli.model import FornetConfig, FornetModel
from fornet_cli.weights.format import meta_for, save_pretrained

runner = CliRunner()
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding capabilities of TorchVision")

FRAMES = ("eberfeld_000000_000019", "fennwick_000000_000019")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """A tiny random FoR-Net checkpoint and two 128 x 256 synthetic val frames with ground truth."""
    root = tmp_path_factory.mktemp("hardness")
    torch.manual_seed(0)
    config = FornetConfig(
        backbone="mobilenetv3_small_050", output_stride=32, low_index=2, mid_index=3, channels=32,
        branch_dilations=(1, 1, 1, 8), separable_branches=True, low_channels=16, decoder="light",
    )
    model = FornetModel(config, num_classes=19, name="tiny_fornet")
    save_pretrained(model, root / "model", meta_for(model, CLASS_NAMES, TRAIN_ID_TO_COLOR[:19].tolist()))
    generate_dataset(root / "cs", train=0, val=2, size=(128, 256), seed=0)
    with unchanged_folder(root, "show-hardness setup"):
        yield {"root": root, "model": root / "model", "cs": root / "cs", "val": root / "cs" / "leftImg8bit" / "val"}


def _run(*args: str | Path) -> object:
    return runner.invoke(app, ["show-hardness", *map(str, args)])


def test_figures_gallery_and_summary_with_ground_truth(setup: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _run(setup["val"], "--weights", setup["model"], "--out", out, "--json", "-")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    for name, city in zip(FRAMES, ("eberfeld", "fennwick")):
        figure = out / city / f"{name}_leftImg8bit.png"  # mirrors the input tree below the folder given
        with Image.open(figure) as im:
            assert im.format == "PNG" and im.width == 3 * 512 + 4 * 10  # three columns: ground truth found
        assert (out / "thumbs" / city / f"{name}_leftImg8bit.jpg").is_file()
    assert json.loads((out / "summary.json").read_text()) == data
    s = data["summary"]
    assert s["images"] == 2 and s["images_with_ground_truth"] == 2
    assert [row["ratio"] for row in s["selector"]] == [0.1, 0.2, 0.3, 0.4]
    for row in s["selector"]:
        assert 0 <= row["error_recall"] <= 1 and 0 < row["coverage"] <= 1
    assert s["band_fixed"]["width_px"] == {"128x256": 2} and len(s["band_curve"]) > 10
    per = data["per_image"]
    assert [p["name"] for p in per] == [f"{c}/{n}_leftImg8bit" for c, n in zip(("eberfeld", "fennwick"), FRAMES)]
    assert all(p["has_ground_truth"] and p["ground_truth"].endswith("_gtFine_labelIds.png") for p in per)
    assert per[0]["grid"] == [8, 16] and data["model"]["stride"] == 16
    assert "selector recall" in result.stderr and "band recall" in result.stderr and "band cells" in result.stderr
    assert all(row["band_cells_error_recall"] is not None for row in s["selector"])


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.tags: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag not in ("img", "meta", "br", "hr", "input", "link"):
            self.open.append(tag)
        self.links += [v for k, v in attrs if k in ("href", "src") and v is not None]

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1] if self.open else None}>"
        self.open.pop()


def test_gallery_is_valid_html_with_local_links_only(setup: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _run(setup["val"], "--weights", setup["model"], "--out", out).exit_code == 0
    text = (out / "index.html").read_text(encoding="utf-8")
    parser = _Links()
    parser.feed(text)
    parser.close()
    assert text.startswith("<!DOCTYPE html>") and parser.open == []  # every element closed, in order
    assert "link" not in parser.tags and "http" not in text  # no stylesheets, fonts or scripts from elsewhere
    assert "<script>" in text and "<style>" in text  # sorting and style inline
    assert len(parser.links) >= 5
    for link in parser.links:
        parsed = urlparse(link)
        assert not parsed.scheme and not parsed.netloc and not link.startswith("/"), link
        assert (out / unquote(parsed.path)).is_file(), link
    figures = {unquote(link) for link in parser.links if link.endswith(".png")}
    assert figures == {f"{c}/{n}_leftImg8bit.png" for c, n in zip(("eberfeld", "fennwick"), FRAMES)}
    assert 'data-sort="2"' in text  # opens sorted by hardness


def test_figures_without_ground_truth_and_with_gt_root(setup: dict[str, Path], tmp_path: Path) -> None:
    loose = tmp_path / "photos"
    loose.mkdir()
    frame = setup["val"] / "eberfeld" / f"{FRAMES[0]}_leftImg8bit.png"
    shutil.copy(frame, loose / frame.name)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (96, 160, 3), dtype=np.uint8)).save(loose / "street.jpg")
    out = tmp_path / "plain"
    result = _run(loose, "--weights", setup["model"], "--out", out, "--json", "-", "--topk", "0.05,0.1,0.5,1")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["summary"]["images_with_ground_truth"] == 0 and data["summary"]["selector"][0].keys() == {"ratio", "area"}
    assert data["model"]["topk_ratios"] == [0.05, 0.1, 0.5, 1.0]
    assert [p["has_ground_truth"] for p in data["per_image"]] == [False, False]
    with Image.open(out / "street.png") as im:
        assert im.width == 2 * 512 + 3 * 10  # two columns: no ground-truth panels
    assert "No ground truth" in result.stderr
    # the same copy finds its labels through --gt; the other image stays without
    result = _run(loose, "--weights", setup["model"], "--out", tmp_path / "rooted", "--gt", setup["cs"], "--json", "-")
    assert result.exit_code == 0, result.output
    per = json.loads(result.stdout)["per_image"]
    assert [p["has_ground_truth"] for p in per] == [True, False]


def test_max_images_and_json_file(setup: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "one"
    report = tmp_path / "reports" / "hardness.json"
    result = _run(setup["val"], "--weights", setup["model"], "--out", out, "--max-images", "1", "--json", report)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert json.loads(report.read_text())["summary"]["images"] == 1
    assert len(list(out.rglob("*.png"))) == 1


def test_a_torchvision_model_is_refused_with_an_explanation(setup: dict[str, Path], tmp_path: Path) -> None:
    from torchvision.models.segmentation import lraspp_mobilenet_v3_large

    folder = tmp_path / "lraspp"
    folder.mkdir()
    model = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=19)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"library": "torchvision", "architecture": "lraspp_mobilenet_v3_large"}))
    result = _run(setup["val"], "--weights", folder, "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert "Error:" in result.stderr and "needs a FoR-Net model with a selector" in result.stderr
    assert "lraspp_mobilenet_v3_large" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_an_onnx_export_is_refused(setup: dict[str, Path], tmp_path: Path) -> None:
    onnx = tmp_path / "head.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(torch.nn.Conv2d(3, 19, 1), (torch.randn(1, 3, 8, 8),), str(onnx), dynamo=False)
    result = _run(setup["val"], "--weights", onnx, "--out", tmp_path / "out")
    assert result.exit_code == 1 and "exported model (.onnx)" in result.stderr and "selector" in result.stderr


def test_bad_options(setup: dict[str, Path], tmp_path: Path) -> None:
    result = _run(setup["val"], "--weights", setup["model"], "--out", tmp_path / "o", "--topk", "0,0.2,0.3,0.4")
    assert result.exit_code == 1 and "must lie in (0, 1]" in result.stderr
    result = _run(setup["val"], "--weights", setup["model"], "--out", tmp_path / "o", "--topk", "0.1,0.2")
    assert result.exit_code == 1 and "Expected 4 Top-K ratios" in result.stderr
    result = _run(setup["val"], "--weights", setup["model"], "--out", tmp_path / "o", "--topk", "a,b")
    assert result.exit_code == 2 and "not a list of numbers" in result.output
    result = _run(tmp_path / "nothing", "--weights", setup["model"], "--out", tmp_path / "o")
    assert result.exit_code == 1 and "does not exist" in result.stderr
    val = shutil.copytree(setup["val"], tmp_path / "val")  # a copy: the command must not write there, but if it did
    result = _run(val, "--weights", setup["model"], "--out", val / "figs")
    assert result.exit_code == 1 and "inside the input folder" in result.stderr
    assert not (val / "figs").exists()
    result = _run(setup["val"], "--weights", setup["model"], "--out", tmp_path / "o", "--gt", tmp_path)
    assert result.exit_code == 1 and "no gtFine/ folder" in result.stderr


def test_selector_cue_runs_the_same_weights_with_another_ranking(setup: dict[str, Path], tmp_path: Path) -> None:
    torch.manual_seed(1)
    config = FornetConfig(
        backbone="mobilenetv3_small_050", output_stride=32, low_index=2, mid_index=3, channels=32,
        branch_dilations=(1, 1, 1, 8), separable_branches=True, low_channels=16, decoder="linear",
        residual_branches=True, mask_branch_output=True, aux_classifier=True,
    )
    model = FornetModel(config, num_classes=19, name="tiny_linear")
    save_pretrained(model, tmp_path / "linear", meta_for(model, CLASS_NAMES, TRAIN_ID_TO_COLOR[:19].tolist()))
    summaries = {}
    for cue in ("none", "error_rule"):
        result = _run(setup["val"], "--weights", tmp_path / "linear", "--out", tmp_path / cue, "--runtime", "torch",
                      "--selector-cue", cue, "--json", "-")
        assert result.exit_code == 0, result.output
        summaries[cue] = json.loads(result.stdout)
        assert summaries[cue]["model"]["selector_cue"] == cue
        chooser = {"none": "the learned selector", "error_rule": "the first pass's expected errors"}[cue]
        assert f"(chosen by {chooser})" in " ".join(result.stderr.split())  # the summary says what chose the cells
    # The first pass's expected errors pick other cells than the (random) learned selector.
    recall = {cue: [r["error_recall"] for r in s["summary"]["selector"]] for cue, s in summaries.items()}
    assert recall["none"] != recall["error_rule"]
    # The light decoder cannot run a first pass; an unknown cue is named.
    result = _run(setup["val"], "--weights", setup["model"], "--out", tmp_path / "o", "--selector-cue", "error_rule")
    assert result.exit_code == 1 and "needs the linear decoder" in result.stderr and "Traceback" not in result.output
    result = _run(setup["val"], "--weights", setup["model"], "--out", tmp_path / "o", "--selector-cue", "entropy")
    assert result.exit_code == 1 and "Unknown selector cue 'entropy'" in result.stderr
    assert not (tmp_path / "o").exists()


# A minimal DOM (cells with data-v / classList / click handlers, a tbody that moves rows) for the gallery's
# sorting script; run with node where it is installed.
_DOM_SHIM = r"""
function cls(){const s=new Set();return {add:(...a)=>a.forEach(x=>s.add(x)),remove:(...a)=>a.forEach(x=>s.delete(x)),contains:x=>s.has(x)}}
function cell(text,v,attrs={}){return {textContent:text,classList:cls(),getAttribute:k=>k==='data-v'?(v===undefined?null:v):(attrs[k]??null),hasAttribute:k=>k in attrs,addEventListener:function(e,f){this.click=f}}}
const heads=[cell('figure',undefined,{'data-nosort':''}),cell('image',undefined,{'data-first':'asc'}),cell('hardness'),cell('mIoU',undefined,{'data-first':'asc'})];
const mk=(n,h,m)=>({name:n,cells:[cell(''),cell(n),cell('',h),cell('',m)]});
const body={rows:[mk('b','0.2','0.5'),mk('a','0.9',''),mk('c','0.5','0.1')],appendChild(r){this.rows=this.rows.filter(x=>x!==r);this.rows.push(r)}};
global.document={getElementById:()=>({tHead:{rows:[{cells:heads}]},tBodies:[body],getAttribute:k=>k==='data-sort'?'2':null})};
eval(require('fs').readFileSync(process.argv[2],'utf8'));
const order=()=>body.rows.map(r=>r.name).join('');
const seen=[order()]; heads[3].click(); seen.push(order()); heads[3].click(); seen.push(order()); heads[1].click(); seen.push(order());
console.log(seen.join(' '), typeof heads[0].click);
"""


def test_gallery_sorting_script(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    import subprocess

    from fornet_cli.viz.gallery import _JS

    (tmp_path / "sort.js").write_text(_JS)
    (tmp_path / "shim.js").write_text(_DOM_SHIM)
    done = subprocess.run([node, str(tmp_path / "shim.js"), str(tmp_path / "sort.js")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-800:]
    # opens by hardness descending; mIoU ascending, then descending, rows without a value last; names A-Z;
    # the thumbnail column does not sort
    assert done.stdout.split() == ["acb", "cba", "bca", "abc", "undefined"]


def test_focus_shows_the_tiles_it_re_ran(setup: dict[str, Path], tmp_path: Path) -> None:
    plain, focus = tmp_path / "plain", tmp_path / "focus"
    assert _run(setup["val"], "--weights", setup["model"], "--out", plain, "--runtime", "torch").exit_code == 0
    result = _run(setup["val"], "--weights", setup["model"], "--out", focus, "--runtime", "torch", "--focus", "0.3",
                  "--focus-tile", "32", "--json", "-")
    assert result.exit_code == 0, result.output
    per = json.loads(result.stdout)["per_image"]
    for image in per:
        f = image["focus"]
        assert f["budget"] == 0.3 and f["ranking"] == "importance" and 0.0 <= f["agreement"] <= 1.0
        area = sum((y2 - y1) * (x2 - x1) for y1, y2, x1, x2 in f["tiles"])
        assert 0 < area <= 0.3 * 128 * 256
    rel = Path("eberfeld") / f"{FRAMES[0]}_leftImg8bit.png"
    with Image.open(plain / rel) as a, Image.open(focus / rel) as b:
        assert b.width == a.width and b.height > a.height  # a seventh panel: a third row
    bad = _run(setup["val"], "--weights", setup["model"], "--out", tmp_path / "bad", "--focus", "0.3", "--focus-rank", "x")
    assert bad.exit_code == 1 and "Unknown focus ranking 'x'" in bad.stderr
