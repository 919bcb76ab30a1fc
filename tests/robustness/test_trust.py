"""Tampered and untrusted weights: safetensors headers that lie, config.json files that name unknown or absurd
architectures, pickles with payloads, registry entries that try to leave the cache, broken ONNX files."""

from __future__ import annotations

import json
import os
import pickle
import resource
import shutil
import struct
from pathlib import Path

import pytest
import torch
from robust_util import assert_clean_failure, invoke, run_cli_measured, train_args
from safetensors.torch import save_file

from fornet_cli import hub
from fornet_cli.errors import WeightsError
from fornet_cli.weights.checkpoint import save_checkpoint
from fornet_cli.weights.resolve import load_weights


def _copy(model_dir: Path, dest: Path) -> Path:
    shutil.copytree(model_dir, dest)
    return dest


def _header(path: Path) -> tuple[dict, bytes]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def _write(path: Path, header: dict, body: bytes) -> None:
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + body)


def _predict(weights: Path, tmp_path: Path, *extra: str):
    image = tmp_path / "img.png"
    if not image.exists():
        from PIL import Image

        Image.new("RGB", (64, 48), (90, 120, 30)).save(image)
    return invoke("predict", image, "--out", tmp_path / "out", "-w", weights, *extra)


def _lie(kind: str, header: dict, body: bytes) -> tuple[dict, bytes] | bytes:
    """A safetensors file whose header lies in one way (a header dict and body, or raw bytes)."""
    names = [k for k in header if k != "__metadata__"]
    conv = next(k for k in names if len(header[k]["shape"]) == 4)
    h = json.loads(json.dumps(header))
    if kind == "shape_larger_than_data":
        h[conv]["shape"] = [2 * d for d in h[conv]["shape"]]
    elif kind == "offsets_past_the_end":
        h[conv]["data_offsets"] = [0, len(body) + 4096]
    elif kind == "offsets_reversed":
        h[conv]["data_offsets"] = h[conv]["data_offsets"][::-1]
    elif kind == "offsets_overlap":
        other = next(k for k in names if k != conv)
        h[other]["data_offsets"], h[other]["shape"], h[other]["dtype"] = h[conv]["data_offsets"], h[conv]["shape"], h[conv]["dtype"]
    elif kind == "dtype_wider_than_data":
        h[conv]["dtype"] = "F64"
    elif kind == "dtype_unknown":
        h[conv]["dtype"] = "Q7"
    elif kind == "tensor_dropped":
        del h[conv]
    elif kind == "body_cut_short":
        return h, body[: len(body) - 1000]
    elif kind == "header_length_huge":
        text = json.dumps(header).encode()
        return struct.pack("<Q", 2**60) + text + body
    elif kind == "header_not_json":
        return struct.pack("<Q", 12) + b"{not json!!}" + body
    elif kind == "zero_bytes":
        return b""
    elif kind == "only_the_length":
        return struct.pack("<Q", 100)
    return h, body


LIES = ["shape_larger_than_data", "offsets_past_the_end", "offsets_reversed", "offsets_overlap", "dtype_wider_than_data",
        "dtype_unknown", "tensor_dropped", "body_cut_short", "header_length_huge", "header_not_json", "zero_bytes",
        "only_the_length"]


@pytest.mark.parametrize("kind", LIES)
def test_a_safetensors_header_that_lies(model_dir: Path, tmp_path: Path, kind: str) -> None:
    folder = _copy(model_dir, tmp_path / "ckpt")
    header, body = _header(folder / "model.safetensors")
    lie = _lie(kind, header, body)
    if isinstance(lie, bytes):
        (folder / "model.safetensors").write_bytes(lie)
    else:
        _write(folder / "model.safetensors", *lie)
    assert_clean_failure(_predict(folder, tmp_path), "model.safetensors is not a valid safetensors file")


def test_a_valid_file_with_the_wrong_shapes_or_integer_weights(model_dir: Path, tmp_path: Path) -> None:
    loaded = load_weights(model_dir)
    state = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    conv = next(k for k, v in state.items() if v.ndim == 4)
    wrong = dict(state, **{conv: torch.zeros(*[d + 1 for d in state[conv].shape])})
    folder = _copy(model_dir, tmp_path / "shape")
    save_file(wrong, str(folder / "model.safetensors"))
    assert_clean_failure(_predict(folder, tmp_path), "do not match the architecture", f"{conv}:")
    ints = {k: v.to(torch.int8) if v.is_floating_point() else v for k, v in state.items()}
    folder = _copy(model_dir, tmp_path / "ints")
    save_file(ints, str(folder / "model.safetensors"))
    assert_clean_failure(_predict(folder, tmp_path), "of another shape or type", "int8 in the file")


def _config_case(kind: str, config: dict) -> str:
    c = json.loads(json.dumps(config))
    mc = c["model_config"]
    if kind == "unknown_architecture":
        c.update(architecture="fornet_vit_giant", model_config={})
    elif kind == "unknown_backbone":
        mc["backbone"] = "resnet9000"
    elif kind == "unknown_decoder":
        mc["decoder"] = "unet"
    elif kind == "channels_1e9":
        mc["channels"] = 10**9
    elif kind == "classes_1e7":
        c["num_classes"] = 10**7
    elif kind == "classes_zero":
        c["num_classes"] = 0
    elif kind == "classes_not_a_number":
        c["num_classes"] = "many"
    elif kind == "branches_without_ratios":
        mc.update(branch_kernels=[7] * 64, branch_dilations=[1] * 64)
    elif kind == "kernel_99":
        mc["branch_kernels"] = [1, 3, 5, 99]
    elif kind == "std_nan":
        c["std"] = [float("nan")] * 3
    elif kind == "std_zero":
        c["std"] = [0.0, 0.2, 0.2]
    elif kind == "palette_out_of_range":
        c["palette"] = [[999, -1, 0]] * c["num_classes"]
    elif kind == "class_names_short":
        c["class_names"] = ["road"]
    elif kind == "newer_format":
        c["format_version"] = 99
    elif kind == "not_fornet":
        c = {"architectures": ["BertModel"], "model_type": "bert"}
    elif kind == "a_list":
        return "[1, 2, 3]"
    elif kind == "not_json":
        return "{'single': 'quotes'}"
    elif kind == "nested_100000_deep":
        return '{"format": "fornet", "num_classes": 19, "architecture": "x", "model_config": ' + "[" * 100_000 + "]" * 100_000 + "}"
    elif kind == "zero_bytes":
        return ""
    return json.dumps(c)


CONFIG_CASES = {
    "unknown_architecture": "Unknown model 'fornet_vit_giant'",
    "unknown_backbone": "unknown backbone 'resnet9000'",
    "unknown_decoder": "unknown decoder 'unet'",
    "channels_1e9": "channels=1000000000 is outside the plausible range",
    "classes_1e7": "num_classes=10000000 is outside the plausible range",
    "classes_zero": "num_classes=0 is outside the plausible range",
    "classes_not_a_number": "malformed field",
    "branches_without_ratios": "Expected 64 Top-K ratios",
    "kernel_99": "branch kernels/dilations out of range",
    "std_nan": "3 finite values each",
    "std_zero": "std positive",
    "palette_out_of_range": "palette colour must be 3 values in 0..255",
    "class_names_short": "must have num_classes (19) entries",
    "newer_format": "written by a newer fornet",
    "not_fornet": "is not a fornet model config",
    "a_list": "is not a fornet model config",
    "not_json": "is not readable JSON",
    "nested_100000_deep": "nested too deeply",
    "zero_bytes": "is not readable JSON",
}


@pytest.mark.parametrize("kind", list(CONFIG_CASES))
def test_a_config_json_that_names_an_unknown_or_absurd_model(model_dir: Path, tmp_path: Path, kind: str) -> None:
    folder = _copy(model_dir, tmp_path / "ckpt")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(_config_case(kind, config))
    assert_clean_failure(_predict(folder, tmp_path, "--format", "color"), "config.json", CONFIG_CASES[kind])


PEAK_MEMORY_LIMIT = 2 << 30  # bytes


def test_absurd_but_in_range_sizes_are_refused_before_any_memory_is_taken(model_dir: Path, tmp_path: Path) -> None:
    # every size within its own limit, together 8.2 billion parameters (33 GB): must be refused by comparing
    # the file with a shape-only (meta device) model, never by allocating. The child may map 6 GB at most.
    folder = _copy(model_dir, tmp_path / "ckpt")
    config = json.loads((folder / "config.json").read_text())
    config["model_config"].update(channels=4096, separable_branches=False, branch_kernels=[11] * 4, branch_dilations=[1] * 4)
    (folder / "config.json").write_text(json.dumps(config))
    from PIL import Image

    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))

    result, peak = run_cli_measured("predict", tmp_path / "a.png", "--out", tmp_path / "o", "-w", folder,
                                    "--device", "cpu", preexec_fn=limit)
    assert_clean_failure(result, "do not match the architecture", "(4096, 960, 1, 1)")
    # the process with torch imported (about 1 GB resident) and the file's 12.6 MB read; the model the config
    # describes would take 33 GB (the run_cli_measured timeout only catches a hang)
    assert peak < PEAK_MEMORY_LIMIT, f"peak memory {peak / 2**30:.2f} GiB: the model was built for real"


class _Payload:
    """Unpickling this runs code: it touches ``MARKER``."""

    marker: Path

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _payloads(folder: Path, marker: Path) -> dict[str, Path]:
    _Payload.marker = marker
    folder.mkdir()
    files = {"raw_pickle.pt": pickle.dumps({"model": _Payload(), "meta": {}}),
             "raw_pickle.pkl": pickle.dumps(_Payload(), protocol=2)}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    torch.save({"model": _Payload(), "meta": {"format": "fornet"}}, folder / "torch_zip.pth")
    run = folder / "run" / "checkpoints"
    run.mkdir(parents=True)
    torch.save({"model": {}, "config": _Payload(), "iteration": 1}, run / "last.pt")
    return {"raw_pickle.pt": folder / "raw_pickle.pt", "raw_pickle.pkl": folder / "raw_pickle.pkl",
            "torch_zip.pth": folder / "torch_zip.pth", "run": folder / "run"}


def test_a_pickle_with_a_payload_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "PAYLOAD-RAN"
    files = _payloads(tmp_path / "evil", marker)
    for name in ("raw_pickle.pt", "raw_pickle.pkl", "torch_zip.pth"):
        refused = _predict(files[name], tmp_path)
        assert_clean_failure(refused, "is a pickled file", "--trust-pickle")
        trusted = _predict(files[name], tmp_path, "--trust-pickle")
        assert_clean_failure(trusted, "cannot be loaded", "safe loader refuses to unpickle")
    assert_clean_failure(_predict(files["run"], tmp_path), "safe loader refuses to unpickle", "GLOBAL")
    resumed = invoke("train", "--resume", files["run"], "--no-pretrained")
    assert_clean_failure(resumed, "safe loader refuses to unpickle")
    assert not marker.exists(), "the payload ran"


@pytest.mark.parametrize("kind", ["foreign_dict", "a_list", "zero_bytes", "truncated", "wrong_state"])
def test_resuming_from_a_checkpoint_that_is_not_a_fornet_run(tiny_data: Path, tmp_path: Path, kind: str) -> None:
    run = tmp_path / "run"
    last = run / "checkpoints" / "last.pt"
    if kind in ("truncated", "wrong_state"):
        assert invoke(*train_args(tiny_data, run, 1)).exit_code == 0
        if kind == "truncated":
            data = last.read_bytes()
            last.write_bytes(data[: len(data) // 2])
        else:
            state = torch.load(last, weights_only=True)
            state["model"] = {k: v[..., :1] if v.ndim else v for k, v in state["model"].items()}
            save_checkpoint(last, state)
    else:
        last.parent.mkdir(parents=True)
        if kind == "zero_bytes":
            last.write_bytes(b"")
        else:
            torch.save({"weights": torch.zeros(3)} if kind == "foreign_dict" else [1, 2, 3], last)
    phrase = {"foreign_dict": "is not a complete fornet training checkpoint", "a_list": "holds a list, not a checkpoint",
              "zero_bytes": "is empty (0 bytes)", "truncated": "cannot be loaded as a checkpoint",
              "wrong_state": "does not fit this run"}[kind]
    assert_clean_failure(invoke("train", "--resume", run), phrase, "last.pt")


def test_nothing_to_resume_after_a_kill_before_the_first_checkpoint(tiny_data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")  # what a run killed during start-up leaves
    assert_clean_failure(invoke("train", "--resume", run), "stopped before its first checkpoint", "--force")


REGISTRY_ENTRY = """
[evil]
kind = "fornet"
repo_id = "fornet/evil"
filename = "{filename}"
config_filename = "{config}"
revision = "{revision}"
architecture = "fornet_mbv3"
classes = 19
license = "mit"
source = "a registry file from somewhere"
"""


@pytest.mark.parametrize(
    "filename,config,revision,phrase",
    [
        ("../../../../tmp/x.safetensors", "config.json", "main", "must be a relative path inside the repository"),
        ("model.safetensors", "../config.json", "main", "must be a relative path inside the repository"),
        ("/etc/passwd", "config.json", "main", "must be a relative path inside the repository"),
        ("model.safetensors", "config.json", "../../../../tmp/refs", "is not a branch, tag or commit name"),
        ("model.safetensors", "config.json", "/abs", "is not a branch, tag or commit name"),
    ],
)
def test_a_registry_entry_that_tries_to_leave_the_cache(tmp_path: Path, filename: str, config: str, revision: str,
                                                        phrase: str) -> None:
    registry = tmp_path / "weights.toml"
    registry.write_text(REGISTRY_ENTRY.format(filename=filename, config=config, revision=revision))
    assert_clean_failure(invoke("weights", "download", "evil", "--registry", registry), phrase, "[evil]")
    assert_clean_failure(_predict("evil", tmp_path, "--registry", str(registry)), phrase)


def test_an_hf_reference_with_an_escaping_revision_sends_no_request(tmp_path: Path) -> None:
    from hubserver import FakeHub

    server = FakeHub().start()
    try:
        with pytest.raises(WeightsError, match="is not a branch, tag or commit name"):
            load_weights("hf://fornet/x@../../../../tmp/refs", cache_dir=tmp_path / "c", endpoint=server.url)
        with pytest.raises(WeightsError, match="relative path inside the repository"):
            hub.hub_download("fornet/x", "../x", cache_dir=tmp_path / "c", endpoint=server.url)
        assert server.requests == []
    finally:
        server.stop()


@pytest.mark.parametrize("kind", ["zero_bytes", "random_bytes", "truncated_protobuf", "no_fornet_metadata"])
def test_a_broken_or_foreign_onnx_file(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "model.onnx"
    if kind == "zero_bytes":
        path.write_bytes(b"")
    elif kind == "random_bytes":
        path.write_bytes(os.urandom(2048))
    else:
        import onnx
        from onnx import TensorProto, helper

        graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, None, None])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, None, None])])
        data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
        path.write_bytes(data[: len(data) // 2] if kind == "truncated_protobuf" else data)
        assert onnx is not None
    phrase = "no fornet metadata" if kind == "no_fornet_metadata" else "onnxruntime cannot load"
    assert_clean_failure(_predict(path, tmp_path), phrase)
