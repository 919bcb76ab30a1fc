"""The Hub misbehaving, against the real loopback server (tests/hubserver.py): content that differs from its
hash, answers whose headers would write outside the cache, a server that stalls before answering or in the
middle of a download, and a server that is gone. Every case ends in a bounded time with a WeightsError that
says what happened; nothing bad is loaded or cached under a good name."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest
from events import HANG_LIMIT
from hubserver import FakeHub
from robust_util import assert_clean_failure, cli_env, run_cli

from fornet_cli import hub
from fornet_cli.errors import ChecksumError, WeightsError
from fornet_cli.weights.resolve import load_weights

REPO = "fornet/mbv3-random"


@pytest.fixture
def server(model_dir: Path):
    hub_server = FakeHub().start()
    hub_server.add(REPO, {p.name: p.read_bytes() for p in model_dir.iterdir()})
    yield hub_server
    hub_server.stop()


@pytest.fixture
def short_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_HUB_ETAG_TIMEOUT=1 and HF_HUB_DOWNLOAD_TIMEOUT=1 (huggingface_hub reads them when imported)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_ETAG_TIMEOUT", 1)
    monkeypatch.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", 1)


def _flip_last_byte(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0xFF])


def test_content_that_differs_from_its_hash_is_never_loaded(server: FakeHub, model_dir: Path, tmp_path: Path) -> None:
    good = (model_dir / "model.safetensors").read_bytes()
    server.tamper(REPO, "model.safetensors", _flip_last_byte(good))
    kw = {"cache_dir": tmp_path / "cache", "endpoint": server.url}
    with pytest.raises(ChecksumError, match="LFS sha256") as info:
        load_weights(f"hf://{REPO}", **kw)
    blob = Path(str(info.value).split("delete the cached copy ")[1].split(" ")[0])
    assert blob.is_file() and blob.name == hashlib.sha256(good).hexdigest()
    with pytest.raises(ChecksumError):  # the bad copy under the good name is refused again, not trusted
        load_weights(f"hf://{REPO}", **kw)
    server.tamper(REPO, "model.safetensors", good)  # the mirror is fixed; the user follows the advice
    blob.unlink()
    assert load_weights(f"hf://{REPO}", **kw).meta.num_classes == 19
    # a small file (config.json, checked against its git blob sha1) tampered the same way
    server.tamper(REPO, "config.json", (model_dir / "config.json").read_bytes().replace(b'"road"', b'"ROAD"'))
    with pytest.raises(ChecksumError, match="git blob sha1"):
        load_weights(f"hf://{REPO}", cache_dir=tmp_path / "cache2", endpoint=server.url)


@pytest.mark.slow
def test_tampered_download_through_the_cli(server: FakeHub, model_dir: Path, tmp_path: Path) -> None:
    server.tamper(REPO, "model.safetensors", _flip_last_byte((model_dir / "model.safetensors").read_bytes()))
    from PIL import Image

    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    env = cli_env(HF_ENDPOINT=server.url, HF_HUB_CACHE=str(tmp_path / "cache"))
    result = run_cli("predict", tmp_path / "a.png", "--out", tmp_path / "out", "-w", f"hf://{REPO}", env=env)
    assert_clean_failure(result, "Checksum mismatch", "fornet refused to load it")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("header", ["etag", "commit"])
def test_headers_that_would_write_outside_the_cache_are_refused(server: FakeHub, model_dir: Path, tmp_path: Path,
                                                                header: str) -> None:
    target = tmp_path / "outside" / "planted"
    escape = "../" * 12 + str(target).lstrip("/")
    if header == "etag":  # huggingface_hub names the cached file after the ETag, unchecked
        server.repos[REPO].etags["model.safetensors"] = escape
    else:
        server.add("fornet/evil-commit", {p.name: p.read_bytes() for p in model_dir.iterdir()}, commit=escape)
    repo = REPO if header == "etag" else "fornet/evil-commit"
    with pytest.raises(WeightsError, match="which is not a hash; fornet refused to download it"):
        load_weights(f"hf://{repo}", cache_dir=tmp_path / "cache", endpoint=server.url)
    assert not target.exists() and not (tmp_path / "outside").exists()
    assert not [r for r in server.requests if r[0] == "GET"], "nothing may be downloaded"


def _weights_requests(server: FakeHub, method: str) -> list[tuple[str, str]]:
    return [r for r in server.requests if r[0] == method and r[1].endswith("model.safetensors")]


def _file_requests(server: FakeHub, since: int = 0) -> list[tuple[str, str]]:
    """Requests for files (``/resolve/``), leaving out huggingface_hub's own calls to other APIs."""
    return [r for r in server.requests[since:] if "/resolve/" in r[1]]


@pytest.fixture
def metadata_timeouts(monkeypatch: pytest.MonkeyPatch) -> list[float | None]:
    """The timeout of every metadata request fornet makes itself (huggingface_hub.get_hf_file_metadata)."""
    import huggingface_hub

    told: list[float | None] = []
    real = huggingface_hub.get_hf_file_metadata

    def spy(*args, **kwargs):
        told.append(kwargs.get("timeout"))
        return real(*args, **kwargs)

    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", spy)
    return told


def test_a_server_that_never_answers_is_given_up_on_in_bounded_time(
    server: FakeHub, tmp_path: Path, short_timeouts: None, metadata_timeouts: list
) -> None:
    server.stall_seconds = HANG_LIMIT  # never answers within any timeout a client would wait
    with pytest.raises(WeightsError, match=r"did not answer within 1 s \(HF_HUB_ETAG_TIMEOUT\)"):
        load_weights(f"hf://{REPO}", cache_dir=tmp_path / "cache", endpoint=server.url)
    # huggingface_hub alone retries for 6 x 60 s here, whatever HF_HUB_ETAG_TIMEOUT says (measured: 392 s):
    # fornet asks once, with HF_HUB_ETAG_TIMEOUT as the timeout, and gives up
    assert metadata_timeouts == [1]
    assert _file_requests(server) == [("HEAD", f"/{REPO}/resolve/main/model.safetensors")]


def test_a_download_that_stops_half_way_is_given_up_on_and_nothing_is_cached(
    server: FakeHub, tmp_path: Path, short_timeouts: None
) -> None:
    server.body_stall_seconds = HANG_LIMIT  # the body never comes within any timeout a client would wait
    cache = tmp_path / "cache"
    with pytest.raises(WeightsError, match=r"stopped .* no data for 1 s \(HF_HUB_DOWNLOAD_TIMEOUT\), 6 times"):
        load_weights(f"hf://{REPO}", cache_dir=cache, endpoint=server.url)
    assert len(_weights_requests(server, "GET")) == 6  # one attempt and 5 resumed retries, then it gave up
    assert not [p for p in cache.rglob("blobs/*") if not p.name.endswith(".incomplete")]
    server.body_stall_seconds = 0  # the server recovers: the next try downloads and verifies
    assert load_weights(f"hf://{REPO}", cache_dir=cache, endpoint=server.url).meta.num_classes == 19


def test_a_server_that_stalls_once_the_file_is_cached_falls_back_to_the_cache(
    server: FakeHub, tmp_path: Path, short_timeouts: None, metadata_timeouts: list
) -> None:
    kw = {"cache_dir": tmp_path / "cache", "endpoint": server.url}
    load_weights(f"hf://{REPO}", **kw)
    server.stall_seconds = HANG_LIMIT
    asked = len(server.requests)
    told = len(metadata_timeouts)
    assert load_weights(f"hf://{REPO}", **kw).meta.num_classes == 19
    # one metadata request of 1 s per file (the weights and config.json), then the cache: not one per retry
    again = _file_requests(server, asked)
    assert sorted(r[1].rsplit("/", 1)[1] for r in again) == ["config.json", "model.safetensors"]
    assert [r[0] for r in again] == ["HEAD", "HEAD"]
    assert metadata_timeouts[told:] == [1, 1]


def test_a_server_that_is_gone_fails_fast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gone = FakeHub().start()
    url = gone.url
    gone.stop()
    port = int(url.rsplit(":", 1)[1])
    attempts = []
    real = socket.create_connection

    def counting(address, *args, **kwargs):
        if address[1] == port:
            attempts.append(address)
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", counting)
    with pytest.raises(WeightsError, match="Could not reach") as info:
        hub.hub_download(REPO, "model.safetensors", cache_dir=tmp_path / "c", endpoint=url)
    assert "Connect" in str(info.value) or "refused" in str(info.value).lower()
    assert len(attempts) == 1, f"one connection attempt, no retries (huggingface_hub alone backs off for ~25 s): {attempts}"


@pytest.mark.slow
def test_a_stalled_server_through_the_cli_with_the_environment_variable(server: FakeHub, tmp_path: Path) -> None:
    server.stall_seconds = HANG_LIMIT
    env = cli_env(HF_ENDPOINT=server.url, HF_HUB_CACHE=str(tmp_path / "cache"), HF_HUB_ETAG_TIMEOUT="2",
                  HF_HOME=str(tmp_path / "hf-home"))
    result = run_cli("weights", "download", "resnet18.tv_in1k", env=env)
    assert_clean_failure(result, "did not answer within 2 s (HF_HUB_ETAG_TIMEOUT)", "HF_HUB_OFFLINE=1")
    # it asked once and gave up (the timeout it was told is in the message above); run_cli's limit catches a hang
    assert _file_requests(server) == [("HEAD", "/timm/resnet18.tv_in1k/resolve/main/model.safetensors")]
