"""Fast reading of single-channel label PNGs (labelIds, instanceIds, labelId predictions) as torch tensors.

Three decoders, fastest first, each only for the files it reads exactly as Pillow does (docs/BENCHMARKS.md,
"PNG decoding and encoding"; benchmarks/png_decode_speed.py):

1. imagecodecs' libpng (``fornet_cli/data/png.py``) for 8 and 16-bit grey files: 1.4x Pillow on labelIds,
   1.1-1.2x on instanceIds, and 2.5x on the predictions ``fornet predict`` writes (Up filter).
2. torchvision's ``decode_png`` for palette ("P") files, which imagecodecs expands to colours: 1.03-1.3x.
3. Pillow for everything else: damaged files (both libpng paths crash or misread on some; a CRC check sends
   them here, where Pillow explains the problem), 1, 2 and 4-bit files (torchvision 0.29 returns the packed
   bytes of a low-bit palette PNG, not its indices), anything libpng refuses, and every file when neither
   optional decoder is installed. Palette PNGs give their palette indices, as ``np.array(PIL.Image.open(...))``
   does in the official evaluator.

All of them release the GIL, so images decode in parallel threads. The deprecation warning of torchvision's
``decode_png`` is left alone: Python shows DeprecationWarnings of library code only when asked to (``-W``,
``-X dev``, pytest), and a ``warnings.catch_warnings()`` block around the call is not thread-safe before
Python 3.14: on the evaluation's worker threads it left a filter behind.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from . import png

try:
    from torchvision.io import ImageReadMode, decode_png
except ImportError:  # a torchvision without image I/O
    decode_png = None


def read_label_png(path: str | Path, what: str = "label image") -> torch.Tensor:
    """Decode a single-channel PNG to an ``H x W`` tensor: uint8 for 8-bit files, uint16 for 16-bit files.

    Few torch ops take uint16 (comparisons do not): use ``.numpy()`` or convert to int32 for arithmetic.

    ``what`` names the file's role in error messages ("prediction", "ground truth", ...).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"The {what} {path} does not exist.") from None
    except OSError as exc:
        raise DataError(f"Cannot read the {what} {path}: {exc.strerror or exc}.") from None
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise DataError(f"The {what} {path} is not a PNG file. Label images must be lossless single-channel PNGs.")
    fast = png.decode(data)
    if fast is not None and fast.ndim == 2:  # colour files go on to the channel check below
        return torch.from_numpy(fast)
    image = None
    if decode_png is not None and _libpng_reads(data) and _chunks_intact(data):
        try:
            image = decode_png(torch.frombuffer(bytearray(data), dtype=torch.uint8), ImageReadMode.UNCHANGED)
        except RuntimeError:  # e.g. an unusual bit depth or a broken file: let Pillow try and explain
            image = None
    if image is None:
        image = _read_with_pillow(path, what)
    if image.ndim == 3:
        if image.shape[0] != 1:
            raise DataError(
                f"The {what} {path} has {image.shape[0]} channels; expected a single-channel PNG of label ids "
                "(colour visualisations cannot be evaluated)."
            )
        image = image[0]
    return image


def _libpng_reads(data: bytes) -> bool:
    """Whether torchvision decodes the file as Pillow does: a leading IHDR with 8 or 16 bits per sample."""
    return data[12:16] == b"IHDR" and len(data) > 24 and data[24] in (8, 16)


def _chunks_intact(data: bytes) -> bool:
    """Whether every chunk of a PNG is complete and matches its CRC, up to IEND.

    torchvision 0.29's ``decode_png`` crashes the process (SIGSEGV) when libpng meets damaged image data
    (a flipped or missing byte in IDAT); Pillow reports the same files as errors. Damaged files therefore go to
    Pillow. Checking the CRCs costs about 0.01 ms for a Cityscapes label PNG (decoding: about 6 ms).
    """
    pos = 8
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        end = pos + 8 + length
        if end + 4 > len(data):
            return False
        (crc,) = struct.unpack_from(">I", data, end)
        if zlib.crc32(data[pos + 4 : end]) & 0xFFFFFFFF != crc:
            return False
        if data[pos + 4 : pos + 8] == b"IEND":
            return True
        pos = end + 4
    return False


def _read_with_pillow(path: Path, what: str) -> torch.Tensor:
    from PIL import Image

    try:
        with Image.open(path) as im:
            # 1-bit files read as 0 / 255, as libpng expands them (not as booleans): a binary mask given as
            # a prediction then fails with "holds values 255" instead of passing as label ids 0 and 1.
            array = np.array(im.convert("L") if im.mode == "1" else im)  # a copy: torch warns about read-only
    except Exception as exc:  # Pillow raises many types for broken files
        raise DataError(f"Cannot decode the {what} {path}: {exc}. Is the file complete?") from None
    if array.ndim == 3:
        array = np.moveaxis(array, -1, 0)
    if array.dtype not in (np.uint8, np.uint16):
        array = array.astype(np.int32)
    return torch.from_numpy(np.ascontiguousarray(array))
