"""The fast PNG path (imagecodecs): the same arrays as Pillow, and Pillow for every file it must not take."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fornet_cli.data import png
from fornet_cli.data.io import read_image, read_instance_ids, read_label, write_png
from fornet_cli.data.label_png import read_label_png

pytest.importorskip("imagecodecs")
RNG = np.random.default_rng(0)
ARRAYS = {
    "grey8": RNG.integers(0, 34, (37, 53), dtype=np.uint8),
    "grey16": RNG.integers(0, 34000, (37, 53), dtype=np.uint16),
    "rgb": RNG.integers(0, 256, (37, 53, 3), dtype=np.uint8),
    "rgba": RNG.integers(0, 256, (37, 53, 4), dtype=np.uint8),
}


def _pillow_png(array: np.ndarray, **options: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", **options)
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["grey8", "grey16", "rgb"])
def test_decode_gives_pillows_array(kind: str) -> None:
    data = _pillow_png(ARRAYS[kind])
    fast = png.decode(data)
    assert fast is not None
    reference = np.array(Image.open(io.BytesIO(data)))
    assert fast.dtype == reference.dtype and np.array_equal(fast, reference)


@pytest.mark.parametrize("kind", list(ARRAYS))
def test_encode_round_trips_through_pillow(kind: str, tmp_path: Path) -> None:
    path = write_png(tmp_path / f"{kind}.png", ARRAYS[kind])
    assert np.array_equal(np.array(Image.open(path)), ARRAYS[kind])
    assert png.encode(ARRAYS[kind]) == path.read_bytes()  # written by the fast encoder


def test_files_pillow_must_read_are_left_to_it(tmp_path: Path) -> None:
    rgb = ARRAYS["rgb"]
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: Pillow's reader turns the image, so the fast path must not take the file
    rotated = _pillow_png(rgb, exif=exif)
    assert png.decode(rotated) is None
    (tmp_path / "r.png").write_bytes(rotated)
    assert read_image(tmp_path / "r.png").shape == (53, 37, 3)
    palette = Image.fromarray(ARRAYS["grey8"]).convert("P")
    buf = io.BytesIO()
    palette.save(buf, format="PNG")
    assert png.decode(buf.getvalue()) is None  # imagecodecs would expand the palette to colours
    damaged = bytearray(_pillow_png(ARRAYS["grey8"]))
    damaged[60] ^= 0xFF  # inside IDAT: the CRC no longer matches
    assert png.decode(bytes(damaged)) is None
    assert png.decode(_pillow_png(ARRAYS["grey8"])[:-20]) is None  # truncated
    assert png.decode(b"not a png") is None


def test_readers_take_the_fast_path_with_the_same_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = {k: tmp_path / f"{k}.png" for k in ("grey8", "grey16", "rgb")}
    for kind, path in files.items():
        path.write_bytes(_pillow_png(ARRAYS[kind]))
    fast = (read_label(files["grey8"]), read_instance_ids(files["grey16"]), read_image(files["rgb"]),
            read_image(files["grey16"]), read_label_png(files["grey16"]).numpy())
    monkeypatch.setattr("fornet_cli.data.png.imagecodecs", None)  # Pillow (and torchvision) only
    slow = (read_label(files["grey8"]), read_instance_ids(files["grey16"]), read_image(files["rgb"]),
            read_image(files["grey16"]), read_label_png(files["grey16"]).numpy())
    for a, b in zip(fast, slow):
        assert a.dtype == b.dtype and np.array_equal(a, b)
