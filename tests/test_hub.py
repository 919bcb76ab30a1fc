"""Weights registry, Hub downloads against a loopback Hub server, and --weights resolution."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from events import HANG_LIMIT
from hubserver import FakeHub
from readonly import unchanged_folder

import fornet_cli
from fornet_cli import hub
from fornet_cli.errors import ChecksumError, UnknownModelError, WeightsError
from fornet_cli.model.backbone import IMAGENET_ARCHITECTURE
from fornet_cli.weights.checkpoint import save_checkpoint
from fornet_cli.weights.format import meta_for, save_pretrained
from fornet_cli.weights.resolve import load_weights

CLASSES = ["road", "car", "pole"]


@pytest.fixture
def fake_hub():
    server = FakeHub().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A small model saved by the project (random weights) in the published format."""
    torch.manual_seed(1)
    model = fornet_cli.create_model("fornet_mbv3", num_classes=3).eval()
    folder = tmp_path_factory.mktemp("published")
    save_pretrained(model, folder, meta_for(model, CLASSES, palette=[[1, 2, 3], [4, 5, 6], [7, 8, 9]]))
    with unchanged_folder(folder, "published model"):
        yield folder


def _serve(server: FakeHub, folder: Path, repo: str = "fornet/test-mbv3") -> str:
    return server.add(repo, {p.name: p.read_bytes() for p in folder.iterdir()})


def _registry(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "my-weights.toml"
    path.write_text(body)
    return path


def _entry(name: str = "test_mbv3", repo: str = "fornet/test-mbv3", extra: str = "") -> str:
    return f"""
[{name}]
kind = "fornet"
repo_id = "{repo}"
filename = "model.safetensors"
config_filename = "config.json"
revision = "main"
architecture = "fornet_mbv3"
classes = 3
license = "mit"
source = "fornet test suite"
{extra}
"""


def _logits(model: torch.nn.Module) -> torch.Tensor:
    torch.manual_seed(3)
    with torch.no_grad():
        return model(torch.randn(1, 3, 64, 96))


# ---------------------------------------------------------------------------------------- registry


def test_packaged_registry_parses_and_lists_backbones() -> None:
    specs = hub.load_registry()
    assert {"resnet101.tv_in1k", "resnet18.tv_in1k", "mobilenetv3_large_100.ra_in1k"} <= set(specs)
    spec = specs["resnet101.tv_in1k"]
    assert spec.kind == "backbone" and spec.repo_id == "timm/resnet101.tv_in1k" and spec.architecture == "resnet101"
    for name in fornet_cli.list_models():
        weights = fornet_cli.model.get_entry(name).backbone_weights
        backbone = fornet_cli.model.get_entry(name).config.backbone
        # a torchvision backbone loads the ImageNet weights of its timm twin
        assert weights in specs and specs[weights].architecture == IMAGENET_ARCHITECTURE.get(backbone, backbone)


@pytest.mark.parametrize("filename", ["../../etc/passwd", "/abs/model.safetensors", "a/../b", "C:model", "a\\b", ""])
def test_registry_refuses_filenames_that_escape_the_repo(tmp_path: Path, filename: str) -> None:
    body = _entry().replace('filename = "model.safetensors"', f"filename = {filename!r}")
    with pytest.raises(WeightsError, match="relative path inside the repository"):
        hub.parse_registry(_registry(tmp_path, body))


@pytest.mark.parametrize(
    "change,message",
    [
        (('kind = "fornet"', 'kind = "other"'), "kind must be one of"),
        (('repo_id = "fornet/test-mbv3"', 'repo_id = "no-slash"'), "org/name"),
        (('classes = 3', 'classes = "many"'), "classes must be a number"),
        (('license = "mit"', ""), "missing field"),
        (('config_filename = "config.json"', ""), "needs config_filename"),
    ],
)
def test_registry_errors_name_the_entry(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    with pytest.raises(WeightsError, match=message) as info:
        hub.parse_registry(_registry(tmp_path, _entry().replace(*change)))
    assert "[test_mbv3]" in str(info.value)


def test_user_registry_via_environment_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORNET_WEIGHTS", str(_registry(tmp_path, _entry())))
    specs = hub.load_registry()
    assert "test_mbv3" in specs and "resnet18.tv_in1k" in specs


def test_unknown_name_lists_close_matches(tmp_path: Path) -> None:
    with pytest.raises(UnknownModelError, match="Did you mean 'test_mbv3'"):
        load_weights("test_mbv4", registry=_registry(tmp_path, _entry()), cache_dir=tmp_path / "cache")


def test_backbone_weights_are_not_a_segmentation_model(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="not a segmentation model"):
        load_weights("resnet18.tv_in1k", cache_dir=tmp_path / "cache")


# ---------------------------------------------------------------------------------------- downloads


def test_download_by_name_matches_local_folder_and_is_cached(fake_hub: FakeHub, published: Path, tmp_path: Path) -> None:
    _serve(fake_hub, published)
    reg = _registry(tmp_path, _entry())
    cache = tmp_path / "cache"
    remote = load_weights("test_mbv3", registry=reg, cache_dir=cache, endpoint=fake_hub.url)
    local = load_weights(published)
    assert remote.meta.class_names == CLASSES
    assert torch.equal(_logits(remote.model), _logits(local.model))
    gets = [r for r in fake_hub.requests if r[0] == "GET"]
    assert len(gets) == 2  # model.safetensors and config.json
    load_weights("test_mbv3", registry=reg, cache_dir=cache, endpoint=fake_hub.url)
    assert [r for r in fake_hub.requests if r[0] == "GET"] == gets, "second load must come from the cache"


def test_download_by_hf_url_with_revision(fake_hub: FakeHub, published: Path, tmp_path: Path) -> None:
    commit = _serve(fake_hub, published)
    loaded = load_weights(f"hf://fornet/test-mbv3@{commit}", cache_dir=tmp_path / "c", endpoint=fake_hub.url)
    assert torch.equal(_logits(loaded.model), _logits(load_weights(published).model))


def test_pinned_sha256_mismatch_is_refused(fake_hub: FakeHub, published: Path, tmp_path: Path) -> None:
    _serve(fake_hub, published)
    reg = _registry(tmp_path, _entry(extra=f'sha256 = "{"0" * 64}"'))
    with pytest.raises(ChecksumError, match="pinned in the weights registry") as info:
        load_weights("test_mbv3", registry=reg, cache_dir=tmp_path / "c", endpoint=fake_hub.url)
    assert "deleted nothing" in str(info.value)


def test_pinned_sha256_match_loads(fake_hub: FakeHub, published: Path, tmp_path: Path) -> None:
    _serve(fake_hub, published)
    sha = hashlib.sha256((published / "model.safetensors").read_bytes()).hexdigest()
    reg = _registry(tmp_path, _entry(extra=f'sha256 = "{sha}"'))
    assert load_weights("test_mbv3", registry=reg, cache_dir=tmp_path / "c", endpoint=fake_hub.url).meta.num_classes == 3


def test_tampered_content_differs_from_hub_hash(fake_hub: FakeHub, published: Path, tmp_path: Path) -> None:
    _serve(fake_hub, published)
    good = (published / "model.safetensors").read_bytes()
    bad = bytearray(good)
    bad[-1] ^= 0xFF  # same length, one flipped byte
    fake_hub.tamper("fornet/test-mbv3", "model.safetensors", bytes(bad))
    with pytest.raises(ChecksumError, match="LFS sha256"):
        load_weights("hf://fornet/test-mbv3", cache_dir=tmp_path / "c", endpoint=fake_hub.url)


def test_missing_repo_file_and_revision(fake_hub: FakeHub, published: Path, tmp_path: Path) -> None:
    _serve(fake_hub, published)
    kw = {"cache_dir": tmp_path / "c", "endpoint": fake_hub.url}
    with pytest.raises(WeightsError, match="was not found"):
        load_weights("hf://fornet/nope", **kw)
    with pytest.raises(WeightsError, match="has no file 'weights.bin'"):
        hub.hub_download("fornet/test-mbv3", "weights.bin", **kw)
    with pytest.raises(WeightsError, match="does not exist in fornet/test-mbv3"):
        load_weights("hf://fornet/test-mbv3@" + "a" * 40, **kw)


@pytest.mark.slow  # huggingface_hub retries a refused connection with backoff (about 25 s)
def test_network_failure_shows_the_cause(tmp_path: Path) -> None:
    server = FakeHub().start()
    url = server.url
    server.stop()  # nothing listens there any more
    with pytest.raises(WeightsError, match="Could not reach") as info:
        load_weights("hf://fornet/test-mbv3", cache_dir=tmp_path / "c", endpoint=url)
    assert "Connect" in str(info.value) or "refused" in str(info.value).lower()


def _run_offline(code: str, cache: Path) -> subprocess.CompletedProcess:
    env = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "PATH": "/usr/bin:/bin", "HOME": str(cache)}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=HANG_LIMIT)


def test_offline_mode_uses_the_cache_and_fails_clearly_without_it(
    fake_hub: FakeHub, published: Path, tmp_path: Path
) -> None:
    _serve(fake_hub, published)
    cache = tmp_path / "hf-cache"
    load_weights("hf://fornet/test-mbv3", cache_dir=cache, endpoint=fake_hub.url)
    fake_hub.stop()
    code = (
        "from fornet_cli.weights.resolve import load_weights\n"
        "import sys\n"
        "print(load_weights(sys.argv[1] if len(sys.argv) > 1 else 'hf://fornet/test-mbv3').meta.class_names)\n"
    )
    ok = _run_offline(code, cache)
    assert ok.returncode == 0, ok.stderr
    assert "['road', 'car', 'pole']" in ok.stdout
    missing = _run_offline(code.replace("test-mbv3", "other-model"), cache)
    assert missing.returncode != 0
    assert "HF_HUB_OFFLINE is set" in missing.stderr


# ---------------------------------------------------------------------------------------- local references


def test_run_directory_and_pickle_rules(published: Path, tmp_path: Path) -> None:
    local = load_weights(published)
    run = tmp_path / "run"
    state = {"model": local.model.state_dict(), "meta": local.meta.to_dict(), "iteration": 7}
    save_checkpoint(run / "checkpoints" / "last.pt", state)
    from_run = load_weights(run)
    assert torch.equal(_logits(from_run.model), _logits(local.model))
    loose = tmp_path / "model.pt"
    save_checkpoint(loose, state)
    with pytest.raises(WeightsError, match="--trust-pickle"):
        load_weights(loose)
    assert load_weights(loose, trust_pickle=True).meta.num_classes == 3


def test_pickle_with_code_is_never_executed(tmp_path: Path) -> None:
    import pickle

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"model": Payload()}))
    with pytest.raises(WeightsError, match="cannot be loaded"):
        load_weights(evil, trust_pickle=True)
    assert not marker.exists()


def test_class_count_mismatch(published: Path) -> None:
    with pytest.raises(WeightsError, match="predicts 3 classes, but 19 were requested"):
        load_weights(published, num_classes=19)


def test_safetensors_needs_its_config(published: Path, tmp_path: Path) -> None:
    lonely = tmp_path / "x.safetensors"
    lonely.write_bytes((published / "model.safetensors").read_bytes())
    with pytest.raises(WeightsError, match="needs its config.json"):
        load_weights(lonely)


def test_pin_resolves_the_commit_and_hash(fake_hub: FakeHub, published: Path, tmp_path: Path) -> None:
    commit = _serve(fake_hub, published)
    spec = hub.parse_registry(_registry(tmp_path, _entry()))["test_mbv3"]
    assert not spec.pinned
    pinned = hub.pin_spec(spec, cache_dir=tmp_path / "c", endpoint=fake_hub.url)
    assert pinned == {"revision": commit, "sha256": hashlib.sha256((published / "model.safetensors").read_bytes()).hexdigest()}
    body = _entry().replace('revision = "main"', f'revision = "{commit}"\nsha256 = "{pinned["sha256"]}"')
    again = hub.parse_registry(_registry(tmp_path, body))["test_mbv3"]
    assert again.pinned
    assert load_weights("test_mbv3", registry=tmp_path / "my-weights.toml", cache_dir=tmp_path / "c", endpoint=fake_hub.url)
