"""The guards of shared fixtures (tests/readonly.py) notice every kind of change they promise to."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from readonly import unchanged_folder, unchanged_model

import fornet_cli


def _folder(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("a")
    (root / "sub" / "b.bin").write_bytes(b"b")
    return root


@pytest.mark.parametrize(
    "change,named",
    [
        (lambda f: (f / "sub" / "b.bin").write_bytes(b"B"), "sub/b.bin"),
        (lambda f: (f / "sub" / "c.bin").write_bytes(b"c"), "sub/c.bin"),
        (lambda f: (f / "sub" / "b.bin").unlink(), "sub/b.bin"),
        (lambda f: (f / "new").mkdir(), "new"),
    ],
    ids=["edit", "add", "remove", "mkdir"],
)
def test_a_changed_folder_fails_naming_what_changed(tmp_path: Path, change, named: str) -> None:
    folder = _folder(tmp_path / "shared")
    with pytest.raises(AssertionError, match=f"shared thing .*'{named}'"), unchanged_folder(folder, "thing"):
        change(folder)


def test_reading_a_folder_is_no_change(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "shared")
    with unchanged_folder(folder, "thing"):
        assert (folder / "a.txt").read_text() == "a" and (folder / "sub" / "b.bin").read_bytes() == b"b"


def _train_one_batch(model: torch.nn.Module) -> None:
    model.train()(torch.randn(2, 3, 64, 64))  # a forward in train mode moves the BatchNorm statistics
    model.eval()


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda m: m.decoder.low.bias.add_(1.0), "weights"),
        (_train_one_batch, "weights"),
        (lambda m: m.train(), "train/eval mode"),
        (lambda m: setattr(m, "topk_ratios", 0.5), "Top-K ratios"),
    ],
    ids=["weights", "buffers", "mode", "ratios"],
)
def test_a_changed_model_fails(change, message: str) -> None:
    model = fornet_cli.create_model("fornet_mbv3", num_classes=2).eval()
    with pytest.raises(AssertionError, match=f"{message} of the shared mbv3"), unchanged_model(model, "mbv3"):
        with torch.no_grad():
            change(model)


def test_using_a_model_is_no_change() -> None:
    model = fornet_cli.create_model("fornet_mbv3", num_classes=2).eval()
    with unchanged_model(model, "mbv3"), torch.no_grad():
        model.forward_all(torch.randn(1, 3, 64, 64))
