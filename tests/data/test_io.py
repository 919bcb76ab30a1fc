import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fornet_cli.data import io
from fornet_cli.data.io import find_images, read_image, read_instance_ids, read_label, write_png
from fornet_cli.errors import DataError

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (6, 10, 3), dtype=np.uint8)


def _save(im: Image.Image, path: Path, **kw: object) -> Path:
    im.save(path, **kw)
    return path


# ---------------------------------------------------------------------------------------------- read_image


@pytest.mark.parametrize(
    ("mode", "suffix"),
    [
        ("1", "png"),
        ("L", "png"),
        ("P", "png"),
        ("RGB", "png"),
        ("RGBA", "png"),
        ("LA", "png"),
        ("PA", "tif"),
        ("I;16", "png"),
        ("I", "tif"),
        ("F", "tif"),
        ("CMYK", "tif"),
        ("CMYK", "jpg"),
        ("YCbCr", "tif"),
        ("LAB", "tif"),
        ("L", "bmp"),
        ("RGB", "webp"),
        ("P", "gif"),
    ],
)
def test_every_pillow_mode_becomes_rgb_uint8(tmp_path: Path, mode: str, suffix: str) -> None:
    base = Image.fromarray(RGB)
    im = base.convert("P").convert("PA") if mode == "PA" else base.convert(mode)
    path = _save(im, tmp_path / f"x.{suffix}")
    assert Image.open(path).mode in (mode, "RGB", "L", "P", "I;16", "I", "F", "CMYK", "LAB", "YCbCr", "PA")
    out = read_image(path)
    assert out.shape == (6, 10, 3) and out.dtype == np.uint8 and out.flags.writeable


def test_grey_and_colour_values_are_kept(tmp_path: Path) -> None:
    assert np.array_equal(read_image(_save(Image.fromarray(RGB), tmp_path / "a.png")), RGB)
    grey = RGB[..., 0]
    assert np.array_equal(read_image(_save(Image.fromarray(grey), tmp_path / "g.png")), np.stack([grey] * 3, -1))
    rgba = np.dstack([RGB, np.zeros((6, 10), np.uint8)])  # fully transparent: the stored colour is kept
    assert np.array_equal(read_image(_save(Image.fromarray(rgba), tmp_path / "t.png")), RGB)


def test_sixteen_bit_and_float_images_are_scaled(tmp_path: Path) -> None:
    sixteen = np.array([[0, 257, 65535, 32896]], dtype=np.uint16)
    out = read_image(_save(Image.fromarray(sixteen), tmp_path / "s.png"))
    assert out[0, :, 0].tolist() == [0, 1, 255, 128]
    small = np.array([[0, 7, 255]], dtype=np.uint16)  # an 8-bit picture stored in 16 bits stays as it is
    assert read_image(_save(Image.fromarray(small), tmp_path / "small.png"))[0, :, 1].tolist() == [0, 7, 255]
    unit = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    assert read_image(_save(Image.fromarray(unit), tmp_path / "f.tif"))[0, :, 2].tolist() == [0, 128, 255]
    wide = np.array([[-10.0, 0.0, 10.0, np.nan]], dtype=np.float32)  # stretched from min to max
    assert read_image(_save(Image.fromarray(wide), tmp_path / "w.tif"))[0, :, 0].tolist() == [0, 128, 255, 128]
    big = np.array([[-70000, 0, 70000]], dtype=np.int32)
    assert read_image(_save(Image.fromarray(big), tmp_path / "i.tif"))[0, :, 0].tolist() == [0, 127, 255]


def test_cmyk_matches_pillows_conversion(tmp_path: Path) -> None:
    cmyk = Image.fromarray(RGB).convert("CMYK")
    assert np.array_equal(read_image(_save(cmyk, tmp_path / "c.tif")), np.asarray(cmyk.convert("RGB")))


@pytest.mark.parametrize(("orientation", "k"), [(3, 2), (6, -1), (8, 1)])
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int, k: int) -> None:
    im = Image.fromarray(RGB)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = _save(im, tmp_path / "r.png", exif=exif)
    assert Image.open(path).getexif()[0x0112] == orientation
    assert np.array_equal(read_image(path), np.rot90(RGB, k))  # 6: turn clockwise, 8: counter-clockwise


@pytest.mark.parametrize("reader", [read_image, read_label, read_instance_ids])
def test_missing_empty_corrupt_and_truncated_files_name_the_file(tmp_path: Path, reader: object) -> None:
    good = _save(Image.fromarray(RNG.integers(0, 256, (64, 64), dtype=np.uint8)), tmp_path / "good.png")
    data = good.read_bytes()
    cases = {
        "missing.png": None,
        "empty.png": b"",
        "text.png": b"this is not an image\n",
        "truncated.png": data[: len(data) // 2],
        "badcrc.png": data[:40] + bytes([data[40] ^ 0xFF]) + data[41:],
    }
    for name, content in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(DataError) as info:
            reader(path)  # type: ignore[operator]
        assert str(path) in str(info.value), name
    with pytest.raises(DataError, match="empty"):
        read_image(tmp_path / "empty.png")
    with pytest.raises(DataError, match="does not exist"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(DataError, match="folder"):
        read_image(tmp_path)


def test_decompression_bomb_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _save(Image.fromarray(RGB), tmp_path / "a.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)
    with pytest.raises(DataError, match="too large"):
        read_image(path)


# ---------------------------------------------------------------------------------------- labels, instances


def test_read_label_accepts_grey_and_palette_and_refuses_colour(tmp_path: Path) -> None:
    ids = RNG.integers(0, 34, (5, 7), dtype=np.uint8)
    assert np.array_equal(read_label(_save(Image.fromarray(ids), tmp_path / "l.png")), ids)
    pal = Image.frombytes("P", (7, 5), ids.tobytes())
    pal.putpalette([v for i in range(256) for v in (i, 255 - i, 0)])
    assert np.array_equal(read_label(_save(pal, tmp_path / "p.png")), ids)  # palette index = stored value
    for mode in ("RGB", "RGBA", "I;16"):
        with pytest.raises(DataError, match="not a label map") as info:
            read_label(_save(Image.fromarray(ids).convert(mode), tmp_path / f"{mode[:3]}.png"))
        assert str(tmp_path) in str(info.value)


def test_read_instance_ids_keeps_sixteen_bit_values(tmp_path: Path) -> None:
    inst = np.array([[7, 26000, 26001], [33005, 24, 0]], dtype=np.uint16)
    out = read_instance_ids(_save(Image.fromarray(inst), tmp_path / "i.png"))
    assert out.dtype == np.int32 and np.array_equal(out, inst)
    with pytest.raises(DataError, match="not an instance map"):
        read_instance_ids(_save(Image.fromarray(RGB), tmp_path / "rgb.png"))


# ---------------------------------------------------------------------------------------------- write_png


@pytest.mark.parametrize(
    "array",
    [
        RGB,
        RGB[..., 0],
        np.dstack([RGB, RGB[..., :1]]),
        np.array([[0, 65535]], np.uint16),
        np.array([[26001, 7]], np.int32),
        np.array([[True, False]]),
    ],
)
def test_write_png_round_trips(tmp_path: Path, array: np.ndarray) -> None:
    path = write_png(tmp_path / "deep" / "er" / "x.png", array)
    back = np.asarray(Image.open(path))
    expected = array.astype(np.uint8) * 255 if array.dtype == np.bool_ else array
    assert np.array_equal(back, expected) and back.shape == array.shape
    assert os.listdir(path.parent) == ["x.png"]


def test_write_png_refuses_arrays_that_are_not_images(tmp_path: Path) -> None:
    for bad in (np.zeros((2, 2, 2), np.uint8), np.zeros((2, 2), np.float32), np.array([[70000]], np.int32)):
        with pytest.raises(DataError, match="cannot write"):
            write_png(tmp_path / "x.png", bad)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("writer", ["imagecodecs", "pillow"])
def test_write_png_is_atomic(writer: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_png(tmp_path / "x.png", RGB)
    before = path.read_bytes()

    def failing_save(self: Image.Image, fp: object, *args: object, **kw: object) -> None:
        if isinstance(fp, (str, os.PathLike)):
            Path(fp).write_bytes(b"\x89PNG partial")
        else:
            fp.write(b"\x89PNG partial")  # type: ignore[attr-defined]
        raise OSError(28, "No space left on device")

    def failing_write_bytes(self: Path, data: bytes) -> int:
        with open(self, "wb") as fh:
            fh.write(data[:10])
        raise OSError(28, "No space left on device")

    if writer == "pillow":
        monkeypatch.setattr("fornet_cli.data.png.imagecodecs", None)  # as without the optional package
        monkeypatch.setattr(Image.Image, "save", failing_save)
    else:
        pytest.importorskip("imagecodecs")
        monkeypatch.setattr(Path, "write_bytes", failing_write_bytes)
    with pytest.raises(OSError, match="No space"):
        write_png(path, RGB[::-1])
    assert path.read_bytes() == before  # the old file is untouched
    assert os.listdir(tmp_path) == ["x.png"]  # and no temporary file is left
    with pytest.raises(OSError):
        write_png(tmp_path / "new.png", RGB)
    assert os.listdir(tmp_path) == ["x.png"]


def test_write_png_respects_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = write_png(tmp_path / "x.png", RGB)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


# -------------------------------------------------------------------------------------------- find_images


def _touch_images(root: Path, *names: str) -> None:
    for name in names:
        write_png(root / name, RGB)


def test_find_images_expands_files_folders_and_globs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _touch_images(tmp_path / "in", "b.png", "a.JPG", "sub/c.png", "sub/deeper/d.webp", ".hidden.png", ".cache/e.png")
    (tmp_path / "in" / "notes.txt").write_text("x")
    found = find_images([tmp_path / "in"])
    assert [rel.as_posix() for _, rel in found] == ["a.JPG", "b.png", "sub/c.png", "sub/deeper/d.webp"]
    assert all(f.is_file() and f == tmp_path / "in" / rel for f, rel in found)
    single = find_images([str(tmp_path / "in" / "sub" / "c.png")])
    assert single == [(tmp_path / "in" / "sub" / "c.png", Path("c.png"))]
    monkeypatch.chdir(tmp_path)
    globbed = find_images(["in/**/*.png"])
    assert [rel.as_posix() for _, rel in globbed] == ["b.png", "sub/c.png"]
    both = find_images([tmp_path / "in" / "b.png", tmp_path / "in"])  # a file given twice is kept once
    assert len(both) == 4


def test_find_images_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images in the folder"):
        find_images([tmp_path / "empty"])
    with pytest.raises(DataError, match="does not exist"):
        find_images([tmp_path / "nope.png"])
    with pytest.raises(DataError, match="matches no image files"):
        find_images([str(tmp_path / "*.jpg")])
    _touch_images(tmp_path, "a/x.png", "b/x.png")
    with pytest.raises(DataError, match="would both be written as x.png"):
        find_images([tmp_path / "a" / "x.png", tmp_path / "b" / "x.png"])


def test_find_images_survives_symlink_loops(tmp_path: Path) -> None:
    _touch_images(tmp_path / "root", "a.png", "sub/b.png")
    os.symlink(tmp_path / "root", tmp_path / "root" / "sub" / "loop")
    found = find_images([tmp_path / "root"])
    assert [rel.as_posix() for _, rel in found] == ["a.png", "sub/b.png"]


def test_image_suffixes_are_lowercase_with_dot() -> None:
    assert all(s.startswith(".") and s == s.lower() for s in io.IMAGE_SUFFIXES)
