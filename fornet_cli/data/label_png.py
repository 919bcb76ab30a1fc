"""Fast reading of single-channel label PNGs (labelIds, instanceIds, labelId predictions) as torch tensors.

torchvision's libpng decoder is about 20 % faster than Pillow for these files (decoding is the floor of
evaluation time) and, like Pillow, releases the GIL, so images decode in parallel threads. torchvision
0.29 deprecated its image I/O in favour of TorchCodec; Pillow takes over for files libpng refuses and
when a later torchvision drops ``decode_png``. Palette ("P") PNGs give their palette indices, as
``np.array(PIL.Image.open(...))`` does in the official evaluator.

(Local helper of the evaluation engine; it can merge with ``fornet_cli/data/io.py`` later.)
"""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError

# The deprecation notice would repeat for every file; the Pillow fallback covers the removal.
warnings.filterwarnings(
    "ignore", message="The image decoding and encoding capabilities of TorchVision", category=DeprecationWarning
)

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
    image = None
    if decode_png is not None and _chunks_intact(data):
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
            array = np.array(im)  # a copy: torch warns about read-only arrays
    except Exception as exc:  # Pillow raises many types for broken files
        raise DataError(f"Cannot decode the {what} {path}: {exc}. Is the file complete?") from None
    if array.ndim == 3:
        array = np.moveaxis(array, -1, 0)
    if array.dtype not in (np.uint8, np.uint16):
        array = array.astype(np.int32)
    return torch.from_numpy(np.ascontiguousarray(array))
