"""read_label_png gives the array the official evaluator reads (``np.array(PIL.Image.open(f))``), bit for bit,
whichever decoder reads the file (torchvision for intact 8 and 16-bit files, Pillow for the rest)."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fornet_cli.data.label_png import read_label_png


def _save(path: Path, image: Image.Image) -> Path:
    image.save(path, format="PNG")
    return path


def _pillow(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.array(im)


def _raw_png(width: int, height: int, depth: int, color: int, rows: bytes, extra: bytes = b"") -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    plte = chunk(b"PLTE", bytes(range(3 * 2**depth))) if color == 3 else b""
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + plte + extra + chunk(b"IDAT", zlib.compress(rows)) + chunk(
        b"IEND", b"")


def test_8_bit_16_bit_and_palette_files_read_as_pillow_reads_them(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 34, (37, 53), dtype=np.uint8)
    palette = Image.frombytes("P", (53, 37), ids.tobytes())
    palette.putpalette([v for i in range(256) for v in (i, 255 - i, (7 * i) % 256)])
    files = {
        "L": _save(tmp_path / "l.png", Image.fromarray(ids)),
        "I;16": _save(tmp_path / "i16.png", Image.fromarray(ids.astype(np.uint16) * 1000 + 999)),
        "P": _save(tmp_path / "p.png", palette),
    }
    for mode, path in files.items():
        out = read_label_png(path).numpy()
        reference = _pillow(path)
        assert out.dtype == reference.dtype and np.array_equal(out, reference), mode
    assert read_label_png(files["P"]).numpy().max() == ids.max()  # indices, not colours


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_low_bit_palette_files_give_their_indices(tmp_path: Path, depth: int) -> None:
    """torchvision 0.29's decode_png returns their packed bytes: they go to Pillow, which unpacks them."""
    rng = np.random.default_rng(depth)
    values = rng.integers(0, 2**depth, (6, 16)).astype(np.uint8)
    bits = np.unpackbits(values[..., None], axis=-1)[..., 8 - depth :].reshape(6, -1)
    rows = b"".join(b"\0" + np.packbits(row).tobytes() for row in bits)
    path = tmp_path / "p.png"
    path.write_bytes(_raw_png(16, 6, depth, 3, rows))
    assert np.array_equal(read_label_png(path).numpy(), values)
    assert np.array_equal(_pillow(path), values)


def test_a_1_bit_file_reads_as_0_and_255(tmp_path: Path) -> None:
    mask = np.random.default_rng(1).random((9, 11)) < 0.5
    path = _save(tmp_path / "m.png", Image.fromarray(mask))
    out = read_label_png(path).numpy()
    assert out.dtype == np.uint8 and np.array_equal(out, mask.astype(np.uint8) * 255)


def test_genuine_cityscapes_files_read_as_pillow_reads_them(real_fixtures: Path) -> None:
    files = [p for p in sorted(real_fixtures.glob("cityscapes-*/**/*.png")) if "leftImg8bit" not in p.parts]
    assert files
    modes = set()
    for path in files:  # read in place
        out = read_label_png(path).numpy()
        reference = _pillow(path)
        assert out.dtype == reference.dtype and np.array_equal(out, reference), path
        with Image.open(path) as im:
            modes.add(im.mode)
    assert {"L", "I;16", "P"} <= modes  # labelIds, instanceIds and palette predictions


def test_importing_the_reader_leaves_the_warning_filters_alone() -> None:
    code = (
        "import warnings\n"
        "import numpy, torch, torchvision.io, PIL.Image\n"  # third-party packages add filters of their own
        "before = list(warnings.filters)\n"
        "import fornet_cli.data.label_png\n"
        "assert warnings.filters == before, warnings.filters[: len(warnings.filters) - len(before) + 1]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_bad_file_is_a_data_error_naming_it(tmp_path: Path) -> None:
    from fornet_cli.errors import DataError

    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buf, format="PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(DataError, match="Is the file complete"):
        read_label_png(path, "prediction")
