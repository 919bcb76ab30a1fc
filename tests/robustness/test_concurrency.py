"""Two processes at once: two `fornet predict` writing the same files of one --out folder, and two downloads
of the same weights into one Hugging Face cache."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from events import HANG_LIMIT, wait_for
from hubserver import FakeHub
from PIL import Image
from robust_util import cli_env, invoke


def _popen(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fornet_cli", *map(str, args)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_two_predicts_into_one_folder_write_whole_identical_files(model_dir: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    for i in range(24):
        sub = tmp_path / "in" / f"part{i % 3}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)).save(sub / f"img{i:02d}.png")
    args = ("predict", tmp_path / "in", "--out", tmp_path / "shared", "-w", model_dir, "--format", "trainid,color",
            "--overwrite")
    # both processes write every file (--overwrite), in the same order: as many collisions as possible
    procs = [_popen(*args, env=cli_env()) for _ in range(2)]
    results = [(p.wait(HANG_LIMIT), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    for code, stderr in results:
        assert code == 0, stderr[-3000:]
    reference = invoke("predict", tmp_path / "in", "--out", tmp_path / "alone", "-w", model_dir, "--format", "trainid,color")
    assert reference.exit_code == 0, reference.stderr
    shared = sorted(p.relative_to(tmp_path / "shared") for p in (tmp_path / "shared").rglob("*") if p.is_file())
    alone = sorted(p.relative_to(tmp_path / "alone") for p in (tmp_path / "alone").rglob("*") if p.is_file())
    assert shared == alone and len(shared) == 48, "no temporary or extra files"
    for rel in shared:
        assert (tmp_path / "shared" / rel).read_bytes() == (tmp_path / "alone" / rel).read_bytes(), rel


REGISTRY = """
[shared_mbv3]
kind = "fornet"
repo_id = "fornet/shared-mbv3"
filename = "model.safetensors"
config_filename = "config.json"
revision = "main"
architecture = "fornet_mbv3"
classes = 19
license = "mit"
source = "fornet test suite"
sha256 = "{sha}"
"""


def _asked_for(server: FakeHub, origin: str, method: str, filename: str) -> int:
    return sum(1 for m, path, agent in list(server.clients)
               if m == method and path.endswith(filename) and f"origin/{origin}" in agent)


@pytest.mark.slow
def test_two_downloads_of_the_same_weights_end_with_one_good_copy(model_dir: Path, tmp_path: Path) -> None:
    weights = (model_dir / "model.safetensors").read_bytes()
    sha = hashlib.sha256(weights).hexdigest()
    server = FakeHub().start()
    try:
        server.add("fornet/shared-mbv3", {p.name: p.read_bytes() for p in model_dir.iterdir()})
        server.hold_bodies = threading.Event()  # the first download waits inside its GET until released
        (tmp_path / "weights.toml").write_text(REGISTRY.format(sha=sha))
        common = dict(HF_ENDPOINT=server.url, HF_HUB_CACHE=str(tmp_path / "cache"), HF_HOME=str(tmp_path / "home"),
                      HF_HUB_DOWNLOAD_TIMEOUT=str(int(HANG_LIMIT)))  # held, never timed out and retried
        procs = [_popen("weights", "download", "shared_mbv3", "--registry", tmp_path / "weights.toml",
                        env=cli_env(HF_HUB_USER_AGENT_ORIGIN=f"proc{i}", **common)) for i in range(2)]
        # Release the first GET of the weights only once the other process has asked for them as often as the
        # downloading one did before its GET: both are inside the download of the same file at the same time.
        first = wait_for(lambda: next((o for o in ("proc0", "proc1") if _asked_for(server, o, "GET", "model.safetensors")),
                                      None), "the first GET of the weights", context=lambda: str(server.clients))
        other = "proc1" if first == "proc0" else "proc0"
        heads = _asked_for(server, first, "HEAD", "model.safetensors")
        wait_for(lambda: _asked_for(server, other, "HEAD", "model.safetensors") >= heads,
                 f"{other} to ask for the weights {heads} times", context=lambda: str(server.clients))
        server.hold_bodies.set()
        outs = [(p.wait(HANG_LIMIT), p.stdout.read(), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    finally:
        server.stop()
    for code, _stdout, stderr in outs:
        assert code == 0, stderr[-3000:]
    paths = {stdout.strip() for _code, stdout, _stderr in outs}
    assert len(paths) == 1, paths
    blobs = sorted((tmp_path / "cache").rglob("blobs/*"))
    assert [b.name for b in blobs if b.name == sha] == [sha], blobs
    assert not [b for b in blobs if b.name.endswith(".incomplete")], blobs
    assert Path(paths.pop()).read_bytes() == weights
    gets = [r for r in server.requests if r[0] == "GET" and r[1].endswith("model.safetensors")]
    assert len(gets) == 1, f"the second process must wait for the first and reuse its file: {gets}"
