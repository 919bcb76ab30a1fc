"""Runtimes: what `auto` picks, the cache of exported graphs (reused, rebuilt when damaged, deleted when it
disagrees), the check against eager PyTorch on the first input and the fallback to eager."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from events import HANG_LIMIT
from PIL import Image
from typer.testing import CliRunner

import fornet_cli
from fornet_cli.cli import app
from fornet_cli.errors import ConfigError, ExportError
from fornet_cli.inference import onnx_cache
from fornet_cli.inference.engines import class_argmax
from fornet_cli.inference.predictor import InferenceConfig, Predictor
from fornet_cli.model.calibrate import calibrate_batchnorm

pytest.importorskip("onnxruntime")
runner = CliRunner()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FORNET_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "onnx"


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return calibrate_batchnorm(fornet_cli.create_model("fornet_mbv3"))  # random weights behave as a model's


def _x(seed: int = 0, h: int = 96, w: int = 160) -> torch.Tensor:
    return torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(seed))


def _eager(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(x)


def test_auto_runs_onnxruntime_on_a_cpu_and_caches_the_graph(model: torch.nn.Module, cache: Path) -> None:
    lines: list[str] = []
    predictor = Predictor(model, InferenceConfig(runtime="auto"), notify=lines.append)
    x = _x()
    out = predictor.fornet_outputs(x)  # importance and masks come from the graph too
    info = predictor.runtime_info
    assert info.name == "onnxruntime" and info.cached is False and info.check is not None and info.check.passed
    assert info.check.topk_counts_match is True
    assert len(lines) == 1 and lines[0].startswith("Runtime: onnxruntime on cpu (--runtime auto")
    with torch.inference_mode():
        ref = model.forward_all(x)
    assert torch.allclose(out.logits, ref.logits, atol=1e-4) and torch.equal(out.masks.bool(), ref.masks.bool())
    assert len(list(cache.glob("*.onnx"))) == 1 and len(list(cache.glob("*.json"))) == 1
    again = Predictor(model, InferenceConfig(runtime="auto"))
    labels = again.predict(_x(1))
    assert again.runtime_info.cached is True
    assert torch.equal(labels, _eager(model, _x(1)).argmax(1))


def test_torch_is_plain_eager_bit_for_bit(model: torch.nn.Module, cache: Path) -> None:
    lines: list[str] = []
    predictor = Predictor(model, InferenceConfig(runtime="torch"), notify=lines.append)
    x = _x(2)
    assert torch.equal(predictor.scores(x), _eager(model, x))
    assert predictor.runtime_info.name == "torch" and predictor.runtime_info.check is None
    assert lines == ["Runtime: torch on cpu (--runtime torch)"]
    assert not cache.exists()  # nothing exported


def test_a_damaged_cache_entry_is_rebuilt(model: torch.nn.Module, cache: Path) -> None:
    Predictor(model, InferenceConfig(runtime="onnxruntime")).prepare()
    (graph,) = cache.glob("*.onnx")
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a flipped byte in the middle of the weights
    graph.write_bytes(bytes(data))
    predictor = Predictor(model, InferenceConfig(runtime="onnxruntime"))
    labels = predictor.predict(_x(3))
    info = predictor.runtime_info
    assert info.name == "onnxruntime" and info.cached is False
    assert any("damaged" in note for note in info.notes), info.notes
    assert torch.equal(labels, _eager(model, _x(3)).argmax(1))
    assert onnx_cache.entry_problem(graph, graph.with_suffix(".json"), onnx_cache.cache_key(model, all_outputs=True)) is None


def test_a_wrong_graph_with_a_valid_record_is_caught_by_the_check_and_deleted(model: torch.nn.Module, cache: Path) -> None:
    torch.manual_seed(1)
    other = calibrate_batchnorm(fornet_cli.create_model("fornet_mbv3"))  # other weights, the same architecture
    Predictor(other, InferenceConfig(runtime="onnxruntime")).prepare()
    (foreign,) = cache.glob("*.onnx")
    key = onnx_cache.cache_key(model, all_outputs=True)
    graph, record = onnx_cache.entry_paths(model, key)
    foreign.replace(graph)  # the other model's graph, under this model's key, with a record that vouches for it
    record.write_text(json.dumps({"key": key, **onnx_cache._file_facts(graph)}))
    lines: list[str] = []
    predictor = Predictor(model, InferenceConfig(runtime="auto"), notify=lines.append)
    x = _x(4)
    scores = predictor.scores(x)
    info = predictor.runtime_info
    assert info.name == "torch" and info.check is None
    assert len(lines) == 1 and "disagrees with eager PyTorch" in lines[0] and "fell back to eager" in lines[0]
    assert torch.equal(scores, _eager(model, x))  # the eager result, this image and the next
    assert torch.equal(predictor.scores(_x(5)), _eager(model, _x(5)))
    assert not graph.exists() and not record.exists()  # never trusted again: the next run exports anew


def test_the_cache_key_follows_the_run_time_ratios_and_selector_cue(model: torch.nn.Module) -> None:
    # Both change the graph without changing a weight: a cached graph of other settings must not be reused.
    base = onnx_cache.cache_key(model, all_outputs=True)
    ratios, cue = model.topk_ratios, model.selector_cue
    try:
        model.selector_cue = "none" if cue != "none" else "error_rule"
        assert onnx_cache.cache_key(model, all_outputs=True) != base
        model.selector_cue = None
        model.topk_ratios = tuple(r / 2 for r in ratios)
        assert onnx_cache.cache_key(model, all_outputs=True) != base
    finally:
        model.topk_ratios, model.selector_cue = ratios, None
    assert model.selector_cue == cue
    assert onnx_cache.cache_key(model, all_outputs=True) == base


def test_a_failed_export_falls_back_to_eager(model: torch.nn.Module, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ExportError("the exporter met an operator it does not know")

    monkeypatch.setattr(onnx_cache, "export_onnx", broken)
    lines: list[str] = []
    predictor = Predictor(model, InferenceConfig(runtime="auto"), notify=lines.append)
    x = _x(6)
    assert torch.equal(predictor.scores(x), _eager(model, x))
    assert len(lines) == 1 and "could not be built" in lines[0] and "operator it does not know" in lines[0]


def test_channels_last_is_checked_and_matches(model: torch.nn.Module) -> None:
    from fornet_cli.inference.runtime import FIRST_INPUT, FIRST_TILES, Runtime

    runtime = Runtime(model, "torch")
    runtime.engine = runtime._engine("channels_last")  # what auto runs without onnxruntime
    runtime.unchecked = {FIRST_INPUT, FIRST_TILES}
    x = _x(7)
    got = runtime.logits(x)
    assert runtime.info.name == "torch channels_last" and runtime.info.check is not None and runtime.info.check.passed
    assert torch.allclose(got, _eager(model, x), atol=1e-4)
    assert next(model.parameters()).is_contiguous()  # the caller's model was not converted


def test_unknown_runtime_is_refused() -> None:
    with pytest.raises(ConfigError, match="Unknown runtime 'tensorrt'"):
        InferenceConfig(runtime="tensorrt")
    result = runner.invoke(app, ["predict", "x.png", "--out", "o", "--runtime", "tensorrt", "-w", "nowhere"])
    assert result.exit_code == 2 and "--runtime" in result.output


def test_class_argmax_equals_argmax() -> None:
    logits = torch.randn(2, 19, 33, 47)
    logits[0, 5, 3, 4] = logits[0, 7, 3, 4] = 100.0  # a tie: the first index wins, as in argmax
    assert torch.equal(class_argmax(logits), logits.argmax(1))
    assert torch.equal(class_argmax(logits, compact=True), logits.argmax(1).to(torch.uint8))
    cl = logits.contiguous(memory_format=torch.channels_last)
    assert torch.equal(class_argmax(cl), logits.argmax(1))


def _image(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(path)
    return path


def test_predict_says_which_runtime_ran_and_puts_it_in_the_json(model_dir: Path, tmp_path: Path, cache: Path) -> None:
    _image(tmp_path / "in" / "a.png", 0)
    _image(tmp_path / "in" / "b.png", 1)
    result = runner.invoke(app, ["predict", str(tmp_path / "in"), "--out", str(tmp_path / "auto"), "-w", str(model_dir), "--json"])
    assert result.exit_code == 0, result.output
    runtime = json.loads(result.stdout)["runtime"]
    assert runtime["requested"] == "auto" and runtime["name"] == "onnxruntime" and runtime["check"]["passed"]
    assert [line for line in result.stderr.splitlines() if line.startswith("Runtime:")] == [
        line for line in result.stderr.splitlines() if "Runtime: onnxruntime on cpu" in line
    ] and result.stderr.count("Runtime:") == 1
    plain = runner.invoke(app, ["predict", str(tmp_path / "in"), "--out", str(tmp_path / "torch"), "-w", str(model_dir),
                                "--runtime", "torch", "--json"])
    assert plain.exit_code == 0 and json.loads(plain.stdout)["runtime"]["name"] == "torch"
    for name in ("a.png", "b.png"):
        a, b = (np.array(Image.open(tmp_path / d / name)) for d in ("auto", "torch"))
        assert (a == b).mean() >= 0.999


def _run_without_onnxruntime(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    code = (
        "import sys\n"
        "sys.modules['onnxruntime'] = None  # as if the package were not installed\n"
        "from fornet_cli.cli import main\n"
        f"sys.argv = ['fornet', *{argv!r}]\n"
        "main()\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env=env, timeout=HANG_LIMIT)


@pytest.mark.slow
def test_without_onnxruntime_auto_runs_eager_channels_last_and_onnxruntime_is_an_error(model_dir: Path, tmp_path: Path) -> None:
    _image(tmp_path / "in" / "a.png", 0)
    auto = _run_without_onnxruntime(["predict", str(tmp_path / "in"), "-o", str(tmp_path / "auto"), "-w", str(model_dir), "--json"], tmp_path)
    assert auto.returncode == 0, auto.stderr
    runtime = json.loads(auto.stdout)["runtime"]
    assert runtime["name"] == "torch channels_last" and runtime["check"]["passed"]
    assert "onnxruntime is not installed" in auto.stderr and auto.stderr.count("Runtime:") == 1
    asked = _run_without_onnxruntime(["predict", str(tmp_path / "in"), "-o", str(tmp_path / "ort"), "-w", str(model_dir),
                                      "--runtime", "onnxruntime"], tmp_path)
    assert asked.returncode == 1 and "Error:" in asked.stderr and "pip install 'fornet-cli[export]'" in asked.stderr
    assert "Traceback" not in asked.stderr and not (tmp_path / "ort" / "a.png").exists()


def test_the_cache_key_names_the_cue_of_eval_mode_whatever_mode_the_model_is_in() -> None:
    # The graph is exported in eval mode: fornet_mbv3's eval-mode cue (error_rule) is what the key must name.
    torch.manual_seed(0)
    model = fornet_cli.create_model("fornet_mbv3")
    in_training = onnx_cache.cache_key(model.train(), all_outputs=True)
    assert onnx_cache.cache_key(model.eval(), all_outputs=True) == in_training
    model.selector_cue = "none"
    assert onnx_cache.cache_key(model.train(), all_outputs=True) != in_training
