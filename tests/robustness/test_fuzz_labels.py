"""Label files that are wrong in every way: as predictions for `fornet eval`, as ground truth for `fornet data
check`, the dataset and training (in the main process and in DataLoader workers), and as random bytes."""

from __future__ import annotations

import io
import json
import re
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from robust_util import assert_clean_failure, invoke

from fornet_cli.data.cityscapes import CityscapesDataset
from fornet_cli.data.io import read_image, read_label
from fornet_cli.data.label_png import read_label_png
from fornet_cli.errors import DataError
from fornet_cli.training.config import TrainConfig
from fornet_cli.training.loop import train

GT_NAME = "aachen_000000_000019"


def _png(array: np.ndarray, **save) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", **save)
    return buf.getvalue()


@pytest.fixture
def eval_root(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """One 16 x 32 ground-truth frame (labelIds 0..33) in Cityscapes layout."""
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 34, (16, 32), dtype=np.uint8)
    gt = tmp_path / "g t ünï" / "gtFine" / "val" / "aachen"
    gt.mkdir(parents=True)
    (gt / f"{GT_NAME}_gtFine_labelIds.png").write_bytes(_png(ids))
    return tmp_path / "g t ünï", ids


def _prediction_cases(ids: np.ndarray) -> dict[str, tuple[bytes, str | None]]:
    """name -> (file content, a phrase the error must contain, or None when the file is a valid prediction)."""
    png = _png(ids)
    return {
        "rgb": (_png(np.stack([ids] * 3, -1)), "has 3 channels"),
        "rgba": (_png(np.stack([ids] * 4, -1)), "has 4 channels"),
        "grey_alpha": (_png(np.stack([ids, ids], -1)), "has 2 channels"),
        "rgb_16bit": (_raw_png(32, 16, 16, 2, b"".join(b"\0" + bytes(32 * 6) for _ in range(16))), "has 3 channels"),
        "wrong_size": (_png(ids[:8]), "is 32x8 (width x height) but its ground truth"),
        "transposed": (_png(np.ascontiguousarray(ids.T)), "(width x height) but its ground truth"),
        "values_200": (_png(np.full_like(ids, 200)), "holds values 200, which are not Cityscapes labelIds"),
        "train_ids_with_255": (_png(np.where(ids > 20, 255, ids % 19).astype(np.uint8)), "looks like trainIds"),
        "16bit_40000": (_png(np.full(ids.shape, 40000, np.uint16)), "holds values 40000"),
        "mode_1": (_png(ids > 10), "holds values 255"),
        "jpeg_bytes": (_jpeg(ids), "is not a PNG file"),
        "truncated": (png[: len(png) // 2], "Is the file complete?"),
        "header_only": (png[:33], "Is the file complete?"),
        "zero_bytes": (b"", "is not a PNG file"),
        "text": (b"class ids go here\n", "is not a PNG file"),
        "valid_16bit": (_png(ids.astype(np.uint16)), None),
        "valid_palette": (_palette_png(ids), None),
        "valid_hand_written": (_raw_png(32, 16, 8, 0, b"".join(b"\0" + row.tobytes() for row in ids)), None),
    }


def _jpeg(ids: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(ids).save(buf, format="JPEG")
    return buf.getvalue()


def _palette_png(ids: np.ndarray) -> bytes:
    """A palette PNG whose indices are the ids (some tools save label maps so; the evaluator reads indices)."""
    image = Image.frombytes("P", (ids.shape[1], ids.shape[0]), ids.tobytes())
    image.putpalette([v for i in range(256) for v in (i, i, i)])
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _raw_png(width: int, height: int, depth: int, color: int, rows: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def test_eval_predictions_of_every_wrong_kind(eval_root: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    root, ids = eval_root
    for name, (data, phrase) in _prediction_cases(ids).items():
        pred = tmp_path / "prédictions 日本" / name
        pred.mkdir(parents=True)
        (pred / f"{GT_NAME}_leftImg8bit.png").write_bytes(data)
        result = invoke("eval", "--predictions", pred, "--root", root, "--split", "val", "--no-hard", "--json", "-")
        if phrase is None:
            assert result.exit_code == 0, (name, result.stderr)
            assert json.loads(result.stdout)["num_images"] == 1
        else:
            assert_clean_failure(result, phrase, f"{GT_NAME}_leftImg8bit.png")


def _bad_label(kind: str, ids: np.ndarray) -> bytes:
    return {
        "rgb_label": lambda: _png(np.stack([ids] * 3, -1)),
        "wrong_size": lambda: _png(ids[: ids.shape[0] // 2]),
        "outside_label_space": lambda: _png(np.where(ids > 20, 200, ids).astype(np.uint8)),
        "truncated": lambda: _png(ids)[:60],
        "jpeg_as_png": lambda: _jpeg(ids),
        "zero_bytes": lambda: b"",
        "instance_16bit_as_label": lambda: _png(ids.astype(np.uint16) * 1000),
    }[kind]()


BAD_LABELS = ("rgb_label", "wrong_size", "outside_label_space", "truncated", "jpeg_as_png", "zero_bytes",
              "instance_16bit_as_label")
IN_ONE_SET = BAD_LABELS[:6]  # the tiny set has 6 training frames: one bad label each
PHRASES = {
    "rgb_label": "is a RGB image, not a label map",
    "wrong_size": "but its image",
    "outside_label_space": "outside the label ids 0..33",
    "truncated": "corrupt/truncated",
    "jpeg_as_png": "is a JPEG file: lossy compression",
    "zero_bytes": "is empty (0 bytes)",
    "instance_16bit_as_label": "is a I;16 image, not a label map",
}


@pytest.fixture
def broken_set(tiny_data: Path, tmp_path: Path) -> tuple[Path, list[Path]]:
    """The tiny set with one bad train label per kind (and no labelTrainIds files to fall back on)."""
    root = tmp_path / "set"
    shutil.copytree(tiny_data, root)
    labels = sorted((root / "gtFine" / "train").rglob("*_gtFine_labelIds.png"))
    for extra in (root / "gtFine").rglob("*_labelTrainIds.png"):
        extra.unlink()
    assert len(labels) == len(IN_ONE_SET)
    for kind, path in zip(IN_ONE_SET, labels):
        path.write_bytes(_bad_label(kind, np.array(Image.open(path))))
    return root, labels


def test_data_check_reports_every_bad_label_and_carries_on(broken_set: tuple[Path, list[Path]]) -> None:
    root, broken = broken_set
    result = invoke("data", "check", root, "--json")
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    problems = json.loads(result.stdout)["problems"]
    for kind, path in zip(IN_ONE_SET, broken):
        found = [p for p in problems if str(path) in p]
        assert found and PHRASES[kind] in found[0], (kind, found)


@pytest.mark.parametrize("kind", BAD_LABELS)
def test_the_dataset_names_the_bad_file(tiny_data: Path, tmp_path: Path, kind: str) -> None:
    root = tmp_path / "set"
    shutil.copytree(tiny_data, root)
    for extra in (root / "gtFine").rglob("*_labelTrainIds.png"):
        extra.unlink()
    label = sorted((root / "gtFine" / "train").rglob("*_gtFine_labelIds.png"))[0]
    label.write_bytes(_bad_label(kind, np.array(Image.open(label))))
    dataset = CityscapesDataset(root, "train")
    index = next(i for i, s in enumerate(dataset.samples) if s.label_ids == label)
    with pytest.raises(DataError, match=re.escape(PHRASES[kind])) as info:
        dataset[index]
    assert str(label) in str(info.value)


@pytest.mark.parametrize("workers", [0, 1])
def test_training_on_a_bad_label_stops_with_the_files_message(broken_set, tmp_path: Path, workers: int) -> None:
    root, broken = broken_set
    config = TrainConfig(model="fornet_mbv3", data="cityscapes", root=str(root), crop=(64, 64), batch=2, iters=3,
                         val_every=1000, ckpt_every=1000, workers=workers, seed=0)
    with pytest.raises(DataError) as info:
        train(config, tmp_path / "run")
    message = str(info.value)
    assert any(str(p) in message for p in broken), message
    assert "Traceback" not in message and "DataLoader worker" not in message, message
    # and through the CLI: one Error line, no traceback (the worker's was in the message before the fix)
    result = invoke("train", "--root", root, "--data", "cityscapes", "--model", "fornet_mbv3", "--no-pretrained",
                    "--crop", "64", "--batch", "2", "--iters", "3", "--workers", str(workers), "--val-every", "1000",
                    "--out", tmp_path / "cli-run")
    assert_clean_failure(result, str(root))


# ------------------------------------------------------------------------------------------ random bytes


_VALID = _png(np.random.default_rng(0).integers(0, 34, (12, 20), dtype=np.uint8))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=200).map(lambda b: b"\x89PNG\r\n\x1a\n" + b),
    st.tuples(st.integers(0, len(_VALID) - 1), st.integers(1, 255), st.integers(1, len(_VALID))).map(
        lambda t: (bytes(_VALID[: t[0]]) + bytes([_VALID[t[0]] ^ t[1]]) + _VALID[t[0] + 1 :])[: t[2]]),
))
def test_readers_raise_only_data_errors_on_arbitrary_bytes(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("bytes") / "x.png"
    path.write_bytes(data)
    for reader in (read_image, read_label, read_label_png):
        try:
            out = reader(path)
        except DataError as exc:
            assert str(path) in str(exc)
        else:
            assert out.ndim in (2, 3) and out.shape[0] > 0
