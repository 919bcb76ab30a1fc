"""Image and label files: reading any Pillow image as RGB, label maps, instance maps, atomic PNG writes,
and expanding files / folders / glob patterns into a list of images.

Every failure to read a file raises :class:`~fornet_cli.errors.DataError` naming the file.
"""

from __future__ import annotations

import glob
import os
import struct
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ..errors import DataError
from ..fsutil import atomic_path
from . import png

IMAGE_SUFFIXES: tuple[str, ...] = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
    ".pnm",
    ".gif",
)

# What Pillow raises on corrupt, truncated or hostile files (a PNG with a bad CRC is a SyntaxError).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombError)

_LABEL_MODES = ("L", "P")  # labelIds / labelTrainIds PNGs are 8-bit grey; some tools save them as palette
_INSTANCE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "L")


def open_image(path: Path | str) -> Image.Image:
    """Open and fully decode ``path`` (EXIF orientation applied); DataError for anything unreadable."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist. Check the path.")
    if path.is_dir():
        raise DataError(f"{path} is a folder, not an image file.")
    try:
        with Image.open(path) as im:
            im.load()  # decode now, so truncated data fails here and not later
            return ImageOps.exif_transpose(im)
    except FileNotFoundError:
        raise DataError(f"{path} does not exist. Check the path.") from None
    except PermissionError:
        raise DataError(f"{path} cannot be read (permission denied). Check its permissions.") from None
    except Image.DecompressionBombError as exc:
        raise DataError(f"{path} is too large to decode safely ({exc}). Resize it first.") from None
    except _DECODE_ERRORS as exc:
        size = path.stat().st_size if path.is_file() else 0
        what = "is empty (0 bytes)" if size == 0 else f"is not a readable image or is corrupt/truncated ({exc})"
        raise DataError(f"{path} {what}. Replace the file (re-download or re-export it).") from None


def image_size(path: Path | str) -> tuple[int, int] | None:
    """``(width, height)`` from the file's header without decoding its pixels; None if Pillow cannot tell."""
    try:
        with warnings.catch_warnings():  # sizes beyond Pillow's bomb warning are what callers want to know about
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return im.size
    except _DECODE_ERRORS:  # open_image explains it
        return None


def read_image(path: Path | str) -> np.ndarray:
    """Any image Pillow reads -> H x W x 3 uint8 RGB.

    Alpha is dropped (the stored colour is kept, as Pillow's ``convert("RGB")`` and torchvision's
    ``decode_image(mode=RGB)`` do). 16-bit and 32-bit integer images are scaled from the range of their type
    (values up to 255 are kept as they are); float images in 0..1 are scaled by 255, other float ranges are
    stretched from their minimum to their maximum.
    """
    fast = _fast_png(path)
    if fast is not None:  # an RGB or grey PNG without EXIF: the array Pillow gives, decoded faster
        if fast.ndim == 3:
            return fast
        grey = fast if fast.dtype == np.uint8 else _to_uint8(fast)
        return np.repeat(grey[:, :, None], 3, axis=2)
    im = open_image(path)
    if im.mode == "RGB":
        return np.array(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        grey = _to_uint8(np.asarray(im))
        return np.repeat(grey[:, :, None], 3, axis=2)
    try:
        if im.mode in ("LA", "La", "PA", "RGBa") or (im.mode == "P" and "transparency" in im.info):
            im = im.convert("RGBA")  # some of these have no direct conversion to RGB
        return np.array(im.convert("RGB"))
    except ValueError:
        raise DataError(
            f"{path} has the Pillow mode {im.mode!r}, which cannot be converted to RGB. "
            "Save it as an 8-bit RGB PNG or JPEG."
        ) from None


def _to_uint8(a: np.ndarray) -> np.ndarray:
    """Scale a single-channel 16/32-bit integer or float image to uint8 (see :func:`read_image`)."""
    if a.dtype.kind == "f":
        a = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = float(a.min()), float(a.max())
        if lo >= 0.0 and hi <= 1.0:
            scaled = a * 255.0
        elif lo >= 0.0 and hi <= 255.0:
            scaled = a
        else:
            scaled = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
        return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    a = a.astype(np.int64)
    lo, hi = int(a.min()), int(a.max())
    if lo >= 0 and hi <= 255:
        return a.astype(np.uint8)  # an 8-bit image stored in a wider type (e.g. L converted to I)
    if lo >= 0 and hi <= 65535:
        return ((a * 255 + 32767) // 65535).astype(np.uint8)  # full 16-bit range, as PNG defines it
    return ((a - lo) * 255 // max(hi - lo, 1)).astype(np.uint8)


def _fast_png(path: Path | str) -> np.ndarray | None:
    """The pixels of a PNG that ``png.decode`` reads exactly as Pillow does; None for anything else (the
    caller's Pillow path then reads it, or explains why it cannot)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if head != png.SIGNATURE:
                return None
            data = head + fh.read()
    except OSError:
        return None
    return png.decode(data, Image.MAX_IMAGE_PIXELS)


def read_label(path: Path | str) -> np.ndarray:
    """A single-channel 8-bit label map (labelIds or labelTrainIds PNG) -> H x W uint8."""
    fast = _fast_png(path)
    if fast is not None and fast.ndim == 2 and fast.dtype == np.uint8:
        return fast
    im = open_image(path)
    if im.mode not in _LABEL_MODES:
        raise DataError(
            f"{path} is a {im.mode} image, not a label map: label files hold one 8-bit value per pixel "
            "(mode L, e.g. *_gtFine_labelIds.png). A *_color.png or a 16-bit instance file cannot be used as labels."
        )
    with open(path, "rb") as fh:
        if fh.read(3) == b"\xff\xd8\xff":  # JPEG: lossy compression blurs ids into their neighbours' values
            raise DataError(
                f"{path} is a JPEG file: lossy compression changes label values at every edge. Label maps must be "
                "lossless (PNG); restore the original file."
            )
    return np.array(im, dtype=np.uint8)  # for mode P this is the palette index, i.e. the stored value


def read_instance_ids(path: Path | str) -> np.ndarray:
    """An instance map (``*_gtFine_instanceIds.png``: label id, or id * 1000 + k for instances) -> H x W int32."""
    fast = _fast_png(path)
    if fast is not None and fast.ndim == 2:
        return fast.astype(np.int32)
    im = open_image(path)
    if im.mode not in _INSTANCE_MODES:
        raise DataError(
            f"{path} is a {im.mode} image, not an instance map: instanceIds PNGs are 16-bit single-channel "
            "(label id, or id * 1000 + k for each instance). Regenerate it with cityscapesscripts."
        )
    return np.array(im).astype(np.int32, copy=False)


def write_png(path: Path | str, array: np.ndarray, compress_level: int | None = None) -> Path:
    """Write ``array`` as a PNG atomically (temporary file in the same folder + ``os.replace``).

    uint8 H x W -> 8-bit grey, H x W x 3 -> RGB, H x W x 4 -> RGBA; uint16 H x W -> 16-bit grey; other
    integer H x W arrays are written as 16-bit when their values fit in 0..65535. Parent folders are created.
    A failed write leaves neither a partial file nor the temporary file behind.

    By default the fast encoder of ``png.py`` writes it (imagecodecs: about 5x Pillow's time for a label map,
    and 2.5x faster to read back); ``compress_level`` (0-9) asks for Pillow at that zlib level instead, as
    does an array of another kind or a missing imagecodecs (Pillow at level 6).
    """
    path = Path(path)
    a = np.asarray(array)
    data = png.encode(a) if compress_level is None else None
    if data is not None:
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
        return path
    image = _array_to_image(a, path)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG", compress_level=6 if compress_level is None else compress_level)
    return path


def _array_to_image(a: np.ndarray, path: Path) -> Image.Image:
    if a.dtype == np.uint8 and (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        return Image.fromarray(np.ascontiguousarray(a))
    if a.ndim == 2 and a.dtype.kind in "iu":
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise DataError(f"cannot write {path}: values {a.min()}..{a.max()} do not fit a 16-bit PNG (0..65535).")
        return Image.fromarray(np.ascontiguousarray(a, dtype=np.uint16))
    if a.ndim == 2 and a.dtype == np.bool_:
        return Image.fromarray(a.astype(np.uint8) * 255)
    raise DataError(
        f"cannot write {path}: an array of shape {a.shape} and dtype {a.dtype} is not an image "
        "(expected uint8 HxW, HxWx3, HxWx4 or 16-bit HxW)."
    )


def output_names(pairs: Iterable[tuple[Path, Path]], suffix: str = ".png", what: str = "written") -> list[Path]:
    """Each input's relative output path (its mirrored path with ``suffix``), refusing two inputs that would
    share one (``a.jpg`` and ``a.png`` both give ``a.png``) up front, rather than skipping or overwriting one."""
    seen: dict[Path, Path] = {}
    names = []
    for file, rel in pairs:
        name = rel.with_suffix(suffix)
        other = seen.setdefault(name, file)
        if other != file:
            raise DataError(
                f"{other} and {file} would both be {what} as {name} (outputs are named after their image). Rename "
                "one, or pass them separately."
            )
        names.append(name)
    return names


def find_images(inputs: Iterable[Path | str]) -> list[tuple[Path, Path]]:
    """Expand files, folders (recursive) and glob patterns into ``(file, relative path)`` pairs.

    The relative path mirrors the input: a file's own name, the path below a given folder, or the path below
    the fixed part of a glob pattern (``data/**/*.png`` -> below ``data``). Folders are searched recursively
    in sorted order for files with an image suffix (hidden files and folders are skipped; symlinked folders
    are followed, each real folder once). A file named explicitly is taken whatever its suffix. Raises
    DataError for an input that matches nothing and for two images that would mirror to the same path.
    """
    pairs: list[tuple[Path, Path]] = []
    seen: set[Path] = set()
    for raw in inputs:
        path = Path(raw)
        if path.is_file():
            found = [(path, Path(path.name))]
        elif path.is_dir():
            found = [(f, f.relative_to(path)) for f in _walk_images(path)]
            if not found:
                raise DataError(f"no images in the folder {path} (looked for {', '.join(IMAGE_SUFFIXES)}).")
        elif glob.has_magic(str(raw)):
            found = _glob_images(str(raw))
        elif path.exists():
            raise DataError(f"{path} is neither a file nor a folder.")
        else:
            raise DataError(
                f"{path} does not exist. Pass image files, folders or glob patterns such as 'photos/*.jpg'."
            )
        for file, rel in found:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                pairs.append((file, rel))
    _refuse_clashes(pairs)
    return pairs


def is_image_file(path: Path) -> bool:
    """Whether ``path``'s suffix is one of :data:`IMAGE_SUFFIXES` (case-insensitive)."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def _walk_images(root: Path) -> Iterator[Path]:
    visited: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in visited:  # a symlink loop or a second link to the same folder
            dirnames[:] = []
            continue
        visited.add((st.st_dev, st.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            file = Path(dirpath, name)
            if not name.startswith(".") and is_image_file(file) and file.is_file():
                yield file


def _glob_images(pattern: str) -> list[tuple[Path, Path]]:
    parts = Path(pattern).parts
    fixed = next((i for i, p in enumerate(parts) if glob.has_magic(p)), len(parts))
    base = Path(*parts[:fixed]) if fixed else Path(".")
    # pathlib's ``**`` does not descend into symlinked folders: glob.glob does, and a symlink loop makes it
    # list the same files under ever longer paths (exponentially many with two loops).
    rest = str(Path(*parts[fixed:])) if fixed < len(parts) else ""
    files = sorted(base.glob(rest)) if rest else []
    hidden_ok = any(p.startswith(".") and p not in (".", "..") for p in parts)  # glob.glob skips dot-files too
    found = [
        (f, f.relative_to(base))
        for f in files
        if f.is_file() and is_image_file(f) and (hidden_ok or not any(q.startswith(".") for q in f.relative_to(base).parts))
    ]
    if not found:
        raise DataError(f"the pattern {pattern!r} matches no image files (looked for {', '.join(IMAGE_SUFFIXES)}).")
    return found


def _refuse_clashes(pairs: list[tuple[Path, Path]]) -> None:
    by_rel: dict[Path, Path] = {}
    for file, rel in pairs:
        other = by_rel.setdefault(rel, file)
        if other != file:
            raise DataError(
                f"{other} and {file} would both be written as {rel}. Pass their common folder instead of the "
                "files, or rename one."
            )
