"""A full disk (or a file-size limit) while writing checkpoints and predictions: the previous file survives,
nothing half-written is left, and the error says so.

Two ways to fail a write: ``OSError(ENOSPC)`` injected into the real write path after half the bytes went
out (torch.save / the PNG encoder), and a real limit enforced by the kernel (``RLIMIT_FSIZE``: every write
beyond the limit fails with EFBIG) in a subprocess, which needs no root and no special filesystem.
"""

from __future__ import annotations

import errno
import io
import json
import os
import resource
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from robust_util import assert_clean_failure, invoke, run_cli, train_args

from fornet_cli.errors import OutputError
from fornet_cli.training.config import TrainConfig
from fornet_cli.training.loop import train
from fornet_cli.weights.checkpoint import load_checkpoint


def _config(root: Path, **changes) -> TrainConfig:
    base = dict(model="fornet_mbv3", data="cityscapes", root=str(root), crop=(64, 64), batch=2, iters=4, lr=1e-3,
                val_every=1000, ckpt_every=1, log_every=1, workers=0, seed=0)
    return TrainConfig(**{**base, **changes})


def _disk_fills_at(call: int, real_save=torch.save):
    """torch.save that works ``call - 1`` times, then writes half the file and fails as a full disk does."""
    calls = {"n": 0}

    def save(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] < call:
            return real_save(obj, f, *args, **kwargs)
        buf = io.BytesIO()
        real_save(obj, buf)
        f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    return save


def _no_temporary_files(folder: Path) -> None:
    assert not [p for p in folder.rglob("*") if p.name.endswith(".tmp")], sorted(folder.rglob("*"))


def test_full_disk_during_a_checkpoint_keeps_the_previous_one(tiny_data: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "rün dïr ✓"  # spaces and non-ASCII in the run folder, too
    monkeypatch.setattr(torch, "save", _disk_fills_at(3))
    with pytest.raises(OutputError) as info:
        train(_config(tiny_data), run)
    message = str(info.value)
    assert "No space left on device" in message and "The previous last.pt is intact (iteration 2)" in message
    assert f"fornet train --resume {run}" in message
    monkeypatch.undo()
    assert load_checkpoint(run / "checkpoints" / "last.pt")["iteration"] == 2
    _no_temporary_files(run)
    assert train(_config(tiny_data), run, resume=True).iteration == 4  # once there is space again


def test_full_disk_during_the_first_checkpoint_through_the_cli(tiny_data: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch, "save", _disk_fills_at(1))
    result = invoke(*train_args(tiny_data, tmp_path / "run", 3))
    assert_clean_failure(result, "Could not write the checkpoint", "No space left on device", "Nothing was half-written")
    assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists()
    _no_temporary_files(tmp_path / "run")


def _file_size_limit(limit: int):
    def apply() -> None:  # in the child: writes past `limit` bytes fail with EFBIG (Python ignores SIGXFSZ)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.slow
def test_a_real_write_limit_during_a_resumed_run(tiny_data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(_config(tiny_data, iters=6), run, stop_at=2)
    before = (run / "checkpoints" / "last.pt").read_bytes()
    # a checkpoint of fornet_mbv3 with its AdamW state is about 38 MB: 10 MB is not enough, the log is
    result = run_cli("train", "--resume", run, preexec_fn=_file_size_limit(10_000_000))
    assert_clean_failure(result, "Could not write the checkpoint", "File too large", "The previous last.pt is intact (iteration 2)")
    assert (run / "checkpoints" / "last.pt").read_bytes() == before
    _no_temporary_files(run)


def _noise_images(folder: Path, n: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):  # noise does not compress: every colour mask is about 3 bytes per pixel
        Image.fromarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)).save(folder / f"img{i}.png")


@pytest.mark.parametrize("writer", ["imagecodecs", "pillow"])
def test_full_disk_during_predict_leaves_whole_masks_only(writer: str, model_dir: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _noise_images(tmp_path / "in", 5)
    real_save, real_write_bytes = Image.Image.save, Path.write_bytes
    calls = {"n": 0}

    def save(self, fp, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] < 4:
            return real_save(self, fp, *args, **kwargs)
        with open(fp, "wb") as fh:  # half a PNG, then the disk is full
            buf = io.BytesIO()
            real_save(self, buf, *args, **kwargs)
            fh.write(buf.getvalue()[: len(buf.getvalue()) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def write_bytes(self: Path, data: bytes) -> int:  # the fast encoder's bytes go through here
        calls["n"] += 1
        if calls["n"] < 4:
            return real_write_bytes(self, data)
        real_write_bytes(self, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if writer == "pillow":
        monkeypatch.setattr("fornet_cli.data.png.imagecodecs", None)
        monkeypatch.setattr(Image.Image, "save", save)
    else:
        pytest.importorskip("imagecodecs")
        monkeypatch.setattr(Path, "write_bytes", write_bytes)
    out = tmp_path / "out"
    result = invoke("predict", tmp_path / "in", "--out", out, "-w", model_dir, "--format", "color")
    assert_clean_failure(result, "img3.png", "No space left on device", "No partial file was left",
                         "the 3 images before it are complete")
    monkeypatch.undo()
    assert sorted(p.name for p in out.iterdir()) == ["img0.png", "img1.png", "img2.png"]
    for mask in out.iterdir():
        assert np.array(Image.open(mask)).shape == (120, 160, 3)  # complete files
    again = invoke("predict", tmp_path / "in", "--out", out, "-w", model_dir, "--format", "color")
    assert again.exit_code == 0 and "3 skipped" in again.stderr and len(list(out.iterdir())) == 5


@pytest.mark.slow
def test_a_real_write_limit_during_predict(model_dir: Path, tmp_path: Path) -> None:
    _noise_images(tmp_path / "in", 4)
    out = tmp_path / "out"
    # colour masks of noise are ~30 kB of PNG each; trainid masks of the same images are smaller
    result = run_cli("predict", tmp_path / "in", "--out", out, "-w", model_dir, "--format", "trainid,overlay",
                     "--json", preexec_fn=_file_size_limit(20_000))
    assert_clean_failure(result, "Could not write", "File too large", "No partial file was left")
    for mask in out.rglob("*.png"):
        Image.open(mask).load()  # every file there decodes completely
    _no_temporary_files(out)
    assert not result.stdout or json.loads(result.stdout)


@pytest.mark.slow
def test_a_real_write_limit_during_a_hub_export_keeps_the_previous_export(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "hub"
    args = ("export", "-w", model_dir, "--format", "hub", "--out", out, "--height", "64", "--width", "64")
    assert invoke(*args).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    # model.safetensors of fornet_mbv3 is 12.6 MB: a 4 MB file-size limit stops it half-way
    result = run_cli(*args, "--overwrite", preexec_fn=_file_size_limit(4_000_000))
    assert_clean_failure(result, "Could not write the checkpoint", "File too large")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hub"], "no temporary folder left"


def test_a_log_line_cut_short_does_not_stop_a_resume(tiny_data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(_config(tiny_data), run, stop_at=2)
    with open(run / "log.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"iter": 3, "loss": 0.7, "c')  # the disk filled in the middle of a line
    assert train(_config(tiny_data), run, resume=True).iteration == 4
    entries = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [e["iter"] for e in entries if "loss" in e] == [1, 2, 3, 4]
