"""Exports (ONNX, TorchScript, Hub folder) checked against eager PyTorch, independently of the export's own
verification: every test runs the exported artefact itself and compares."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from readonly import unchanged_folder, unchanged_model

import fornet_cli
from fornet_cli.data.labels import CLASS_NAMES, TRAIN_ID_TO_COLOR
from fornet_cli.errors import ConfigError, ExportError
from fornet_cli.export.exporter import ExportOptions, export_model, export_onnx, scene_batch
from fornet_cli.export.model_card import configuration_statement
from fornet_cli.export.onnx_session import META_KEY, OnnxModel, create_session, load_onnx
from fornet_cli.inference.predictor import Predictor
from fornet_cli.model.calibrate import calibrate_batchnorm
from fornet_cli.weights.checkpoint import save_checkpoint
from fornet_cli.weights.format import ModelMeta, meta_for
from fornet_cli.weights.resolve import load_weights

SMALL = {"height": 128, "width": 256}


def _model(name: str) -> fornet_cli.FornetModel:
    torch.manual_seed(0)
    return calibrate_batchnorm(fornet_cli.create_model(name))  # random weights behave as a model's


def _meta(model: fornet_cli.FornetModel, **extra: object) -> ModelMeta:
    return meta_for(model, CLASS_NAMES, TRAIN_ID_TO_COLOR[:19].tolist(), extra=dict(extra))


def _ort_logits(path: Path, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]


def _eager(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(x)


@pytest.fixture(scope="module")
def mbv3() -> Iterator[fornet_cli.FornetModel]:
    """Shared by the tests of this module: none may change it (its teardown checks)."""
    model = _model("fornet_mbv3")
    with unchanged_model(model, "mbv3 model"):
        yield model


@pytest.fixture(scope="module")
def mbv3_onnx(mbv3: fornet_cli.FornetModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("onnx") / "mbv3.onnx"
    export_model(mbv3, _meta(mbv3), path, ExportOptions(**SMALL))
    with unchanged_folder(path.parent, "mbv3_onnx"):
        yield path


def test_onnx_export_of_every_variant_matches_eager(variant: str, tmp_path: Path) -> None:
    model = _model(variant)
    path = tmp_path / f"{variant}.onnx"
    result = export_onnx(model, path, ExportOptions(height=64, width=128), meta=_meta(model))
    assert path.is_file() and result.checks and all(c.passed for c in result.checks)
    # An input size the export itself did not verify at.
    x = scene_batch(1, 96, 160, _meta(model), seed=7)
    got, ref = _ort_logits(path, x), _eager(model, x).numpy()
    assert got.shape == ref.shape == (1, 19, 96, 160)
    assert np.abs(got - ref).max() < 1e-4
    assert (got.argmax(1) == ref.argmax(1)).mean() > 0.999


def test_dynamic_export_keeps_topk_counts_proportional_to_the_input(mbv3: fornet_cli.FornetModel, tmp_path: Path) -> None:
    path = tmp_path / "all.onnx"
    export_model(mbv3, _meta(mbv3), path, ExportOptions(all_outputs=True, **SMALL))
    session = create_session(path)
    assert [o.name for o in session.get_outputs()] == ["logits", "importance", "masks", "pooled"]
    s = mbv3.stride
    for h, w in ((128, 256), (192, 320)):  # grid 8x16 = 128 cells, then 12x20 = 240 cells
        x = scene_batch(1, h, w, _meta(mbv3), seed=3)
        logits, importance, masks, pooled = session.run(None, {"image": x.numpy()})
        cells = (h // s) * (w // s)
        assert masks.shape == (1, 4, h // s, w // s)
        expected = [min(cells, max(1, round(r * cells))) for r in mbv3.topk_ratios]
        assert masks.reshape(4, -1).sum(1).tolist() == expected
        with torch.inference_mode():
            out = mbv3.forward_all(x)
        assert np.array_equal(masks, out.masks.numpy())
        ref = out.logits.numpy()
        assert np.abs(logits - ref).max() < 1e-5 * max(1.0, np.abs(ref).max())  # float32 rounding, relative


def test_static_export_is_fixed_to_its_size(mbv3: fornet_cli.FornetModel, tmp_path: Path) -> None:
    path = tmp_path / "static.onnx"
    export_model(mbv3, _meta(mbv3), path, ExportOptions(dynamic=False, height=96, width=128))
    graph = onnx.load(str(path)).graph
    dims = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 96, 128]
    loaded = load_onnx(path, device="cpu")
    x = scene_batch(1, 96, 128, loaded.meta)
    ref = _eager(mbv3, x)
    assert torch.allclose(loaded.model(x), ref, atol=1e-5 * max(1.0, ref.abs().max().item()))
    with pytest.raises(ConfigError, match="--mode slide --crop 96x128"):
        loaded.model(scene_batch(1, 64, 128, loaded.meta))


def test_onnx_metadata_round_trips_the_model_meta(mbv3: fornet_cli.FornetModel, mbv3_onnx: Path) -> None:
    props = {p.key: p.value for p in onnx.load(str(mbv3_onnx)).metadata_props}
    assert json.loads(props["class_names"]) == list(CLASS_NAMES)
    assert json.loads(props["palette"]) == TRAIN_ID_TO_COLOR[:19].tolist()
    assert json.loads(props["mean"]) == [0.485, 0.456, 0.406] and json.loads(props["std"]) == [0.229, 0.224, 0.225]
    assert props["model_name"] == "fornet_mbv3" and json.loads(props["topk_ratios"]) == [0.1, 0.2, 0.3, 0.4]
    assert props["fornet_version"] == fornet_cli.__version__
    loaded = load_onnx(mbv3_onnx, device="cpu")
    expected = json.loads(json.dumps(_meta(mbv3).to_dict()))  # tuples become lists in JSON
    assert json.loads(props[META_KEY]) == expected
    assert json.loads(json.dumps(loaded.meta.to_dict())) == expected


def test_onnx_model_behind_the_predictor_matches_pytorch(mbv3: fornet_cli.FornetModel, mbv3_onnx: Path) -> None:
    loaded = load_onnx(mbv3_onnx, device="cpu")
    assert isinstance(loaded.model, OnnxModel)
    x = scene_batch(2, 80, 112, loaded.meta, seed=11)
    assert torch.equal(Predictor(loaded.model).predict(x), Predictor(mbv3).predict(x))


@pytest.mark.slow  # the dynamo exporter needs about 10 s even for a small model
def test_dynamo_exporter_matches_eager(tmp_path: Path) -> None:
    model = _model("fornet_r18")
    path = tmp_path / "dynamo.onnx"
    result = export_model(model, _meta(model), path, ExportOptions(exporter="dynamo", height=64, width=128))
    assert result.details["exporter"] == "dynamo" and all(c.passed for c in result.checks)
    x = scene_batch(1, 96, 160, _meta(model), seed=5)
    assert np.abs(_ort_logits(path, x) - _eager(model, x).numpy()).max() < 1e-4


def test_half_export_stores_fp16_weights_behind_fp32_inputs(mbv3: fornet_cli.FornetModel, tmp_path: Path) -> None:
    path = tmp_path / "half.onnx"
    # What this test checks is the file's storage and interface. A random model's top two classes are close on
    # a few per cent of the pixels, which fp16 rounding flips (the check wants 99 % agreement), and no bias
    # spread made that robust; so the classifiers give every pixel the same confident answer here, and the
    # verification judges that the fp16 graph runs and returns it. The fp32 tests judge the graph's numerics;
    # fp16 against fp32 on trained models is an open problem (docs/EXPORT.md, --half).
    mbv3 = copy.deepcopy(mbv3)
    with torch.no_grad():
        for conv in (mbv3.decoder.low, mbv3.decoder.high):
            conv.weight.zero_()
        mbv3.decoder.low.bias.copy_(torch.linspace(0.0, 10.0, mbv3.num_classes))
    result = export_model(mbv3, _meta(mbv3), path, ExportOptions(half=True, height=96, width=128))
    assert all(c.passed for c in result.checks) and "fp16" in result.checks[0].runtime
    model = onnx.load(str(path))
    sizes = {onnx.TensorProto.FLOAT16: 0, onnx.TensorProto.FLOAT: 0}
    for t in model.graph.initializer:
        if len(t.dims) == 4:  # conv weights
            sizes[t.data_type] += int(np.prod(t.dims))
    # All but the importance selector, which runs in float32 by design.
    assert sizes[onnx.TensorProto.FLOAT16] > 0.9 * sum(sizes.values())
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_a_failed_verification_writes_nothing(mbv3: fornet_cli.FornetModel, tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"the previous export")
    with pytest.raises(ExportError, match="does not match eager PyTorch"):
        export_model(mbv3, _meta(mbv3), path, ExportOptions(tolerance=1e-15, overwrite=True, height=64, width=64))
    assert path.read_bytes() == b"the previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # no temporary file left


def test_existing_output_is_kept_without_overwrite(mbv3: fornet_cli.FornetModel, tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"x")
    with pytest.raises(ConfigError, match="--overwrite"):
        export_model(mbv3, _meta(mbv3), path, ExportOptions(**SMALL))
    with pytest.raises(ConfigError, match="opsets 11 to 20"):
        ExportOptions(opset=9)
    with pytest.raises(ConfigError, match="ONNX exports only"):
        ExportOptions(format="hub", half=True)


def test_peer_models_export_without_fornet_metadata(tmp_path: Path) -> None:
    from torchvision.models.segmentation import lraspp_mobilenet_v3_large

    torch.manual_seed(0)
    peer = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=19).eval()
    result = export_onnx(peer, tmp_path / "peer.onnx", ExportOptions(height=64, width=128))
    assert all(c.passed for c in result.checks)
    x = torch.randn(1, 3, 96, 128)
    assert np.abs(_ort_logits(tmp_path / "peer.onnx", x) - _eager(peer, x)["out"].numpy()).max() < 1e-4


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_torchscript_export_is_verified_and_loads_with_its_meta(mbv3: fornet_cli.FornetModel, tmp_path: Path) -> None:
    path = tmp_path / "mbv3.torchscript.pt"
    result = export_model(mbv3, _meta(mbv3), path, ExportOptions(format="torchscript", **SMALL))
    assert [c.runtime for c in result.checks] == ["torch.jit.load"] * 2
    extra = {"fornet.json": ""}
    scripted = torch.jit.load(str(path), _extra_files=extra)
    assert json.loads(extra["fornet.json"])["architecture"] == "fornet_mbv3"
    x = scene_batch(1, 112, 176, _meta(mbv3), seed=2)  # a size the trace never saw
    with torch.inference_mode():
        assert torch.allclose(scripted(x), _eager(mbv3, x), atol=1e-5)


def _run_folder(root: Path, model: fornet_cli.FornetModel, meta: ModelMeta, metrics: dict) -> Path:
    """A training run's layout as fornet train writes it: checkpoints/best.pt and best_metrics.json."""
    save_checkpoint(root / "checkpoints" / "best.pt", {"model": model.state_dict(), "meta": meta.to_dict(), "iter": 600})
    (root / "best_metrics.json").write_text(json.dumps(metrics))
    return root


def test_hub_folder_from_a_run_loads_back_and_predicts_identically(tmp_path: Path) -> None:
    model = _model("fornet_r18")
    training = {"recipe": "cpu-quick", "data": "synth", "crop": [256, 256], "batch": 8, "iters": 600, "lr": 0.002}
    run = _run_folder(tmp_path / "run", model, _meta(model, training=training),
                      {"iter": 600, "miou": 0.4321, "boundary_iou": 0.25})
    loaded = load_weights(run)
    out = tmp_path / "hub"
    result = export_model(loaded.model, loaded.meta, out, ExportOptions(format="hub", height=96, width=128),
                          source=loaded.source)
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert result.checks[0].max_abs_diff == 0.0
    again = load_weights(out)  # what --weights DIR does
    x = scene_batch(2, 96, 160, again.meta, seed=4)
    assert torch.equal(Predictor(again.model).predict(x), Predictor(model).predict(x))
    config = json.loads((out / "config.json").read_text())
    assert config["extra"]["metrics"]["miou"] == 0.4321 and config["extra"]["training"]["recipe"] == "cpu-quick"
    card = (out / "README.md").read_text()
    assert card.startswith("---\nlicense: mit\n")
    assert "This is not the paper's configuration" in card and "0.4321" in card and "at iteration 600" in card
    assert "synthetic street scenes" in card and "cpu-quick" in card
    assert "2605.02764" in card and "Learning to Focus on Hard Regions for Efficient Semantic Segmentation" in card
    assert "road" in card and "bicycle" in card
    # Exporting the Hub folder again keeps the metrics (they travel in config.json).
    result2 = export_model(again.model, again.meta, tmp_path / "hub2", ExportOptions(format="hub", height=64, width=64),
                           source=again.source)
    assert "0.4321" in (tmp_path / "hub2" / "README.md").read_text() and result2.details["metrics"]


def test_hub_export_refuses_a_non_empty_folder_and_replaces_it_with_overwrite(tmp_path: Path) -> None:
    model = _model("fornet_mbv3")
    out = tmp_path / "hub"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(ConfigError, match="not empty"):
        export_model(model, _meta(model), out, ExportOptions(format="hub", height=64, width=64))
    export_model(model, _meta(model), out, ExportOptions(format="hub", height=64, width=64, overwrite=True))
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hub"]  # no temporary or old folder left


def test_model_card_names_the_paper_configuration() -> None:
    with torch.device("meta"):
        paper = fornet_cli.create_model("fornet_r101")
        variant = fornet_cli.create_model("fornet_r101", topk_ratios=0.5)
    assert configuration_statement(_meta(paper)).startswith("**This is the paper's configuration**")
    assert "run with Top-K ratios [0.5, 0.5, 0.5, 0.5]" in configuration_statement(_meta(variant))


def test_missing_onnxruntime_names_the_extra(mbv3_onnx: Path) -> None:
    code = (
        "import sys\n"
        "sys.modules['onnxruntime'] = None  # as if the package were not installed\n"
        "from fornet_cli.export.onnx_session import load_onnx\n"
        "from fornet_cli.errors import MissingDependencyError\n"
        "try:\n"
        f"    load_onnx({str(mbv3_onnx)!r})\n"
        "except MissingDependencyError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "'onnxruntime'" in out and "pip install 'fornet-cli[export]'" in out
