"""Input fuzzing for `fornet predict`: broken, odd and hostile image files, sizes and paths.

One seeded generator writes every kind of bad input into one folder; one `fornet predict` over it must write a
valid mask for every image Pillow can decode, report every other file by name, exit 1, and never crash.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from robust_util import assert_clean_failure, invoke

from fornet_cli.data.io import find_images
from fornet_cli.errors import DataError
from fornet_cli.inference.predict import PredictConfig, predict_images
from fornet_cli.inference.predictor import InferenceConfig, Predictor
from fornet_cli.weights.resolve import load_weights

RNG_SEED = 10


def _encode(image: Image.Image, fmt: str, **save) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **save)
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _raw_png(width: int, height: int, bit_depth: int, color_type: int, rows: bytes) -> bytes:
    """A PNG written by hand: for headers Pillow cannot write (16-bit RGB) or that lie (a huge size)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(rows)) + _png_chunk(b"IEND", b"")


def make_bad_inputs(root: Path) -> tuple[dict[str, tuple[int, int]], set[str]]:
    """Write the fuzz corpus. Returns the files that must be predicted (name -> (height, width) of the mask)
    and the files that must be reported as unreadable; files whose fate depends on where the damage fell
    (random byte flips) are in neither."""
    rng = np.random.default_rng(RNG_SEED)
    root.mkdir(parents=True)
    rgb = Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    png, jpg = _encode(rgb, "PNG"), _encode(rgb, "JPEG", quality=90)
    good: dict[str, tuple[int, int]] = {}
    bad: set[str] = set()

    def put(name: str, data: bytes) -> None:
        (root / name).write_bytes(data)

    # truncated at seeded positions (never within the last 16 bytes, where only the end marker lives)
    for fmt, data in (("png", png), ("jpg", jpg)):
        for i, cut in enumerate(sorted(rng.choice(np.arange(1, len(data) - 16), 12, replace=False))):
            put(f"truncated_{fmt}_{i:02d}.{fmt}", data[:cut])
            bad.add(f"truncated_{fmt}_{i:02d}.{fmt}")
    # random byte flips after the signature: decodable garbage or a decode error, never a crash
    for fmt, data in (("png", png), ("jpg", jpg)):
        for i in range(12):
            flipped = bytearray(data)
            for pos in rng.integers(8, len(data), 1 + i % 4):
                flipped[pos] ^= int(rng.integers(1, 256))
            put(f"flipped_{fmt}_{i:02d}.{fmt}", bytes(flipped))
    # empty files and files that are not images at all
    for name in ("zero_png.png", "zero_jpg.jpg", "zero_tif.tif", "zero_webp.webp"):
        put(name, b"")
    put("text.png", b"just some text, not an image\n")
    put("html.jpg", b"<!doctype html><html><body>404 Not Found</body></html>")
    put("random.jpeg", rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    put("pdf.png", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\n")
    put("signature_only.png", b"\x89PNG\r\n\x1a\n")
    put("signature_garbage.png", b"\x89PNG\r\n\x1a\n" + rng.integers(0, 256, 512, dtype=np.uint8).tobytes())
    put("jpeg_soi_only.jpg", b"\xff\xd8\xff")
    put("elf.bmp", b"\x7fELF\x02\x01\x01" + bytes(64))
    put("zip.gif", b"PK\x03\x04" + bytes(64))
    bad |= {"zero_png.png", "zero_jpg.jpg", "zero_tif.tif", "zero_webp.webp", "text.png", "html.jpg", "random.jpeg", "pdf.png",
            "signature_only.png", "signature_garbage.png", "jpeg_soi_only.jpg", "elf.bmp", "zip.gif"}
    # every Pillow mode, in a format that keeps it
    grey = rng.integers(0, 256, (48, 64), dtype=np.uint8)
    modes = {
        "mode_1.png": Image.fromarray(grey > 127),
        "mode_L.png": Image.fromarray(grey),
        "mode_P.png": rgb.convert("P"),
        "mode_P_transparency.png": rgb.convert("P"),
        "mode_RGBA.png": rgb.convert("RGBA"),
        "mode_LA.png": Image.fromarray(grey).convert("LA"),
        "mode_I16.png": Image.fromarray(rng.integers(0, 65536, (48, 64)).astype(np.uint16)),
        "mode_I.tif": Image.fromarray(rng.integers(-(2**31), 2**31 - 1, (48, 64)).astype(np.int32)),
        "mode_F.tif": Image.fromarray(rng.random((48, 64)).astype(np.float32)),
        "mode_F_nan_inf.tif": Image.fromarray(np.where(grey > 200, np.nan, np.where(grey < 50, np.inf, grey)).astype(np.float32)),
        "mode_F_constant.tif": Image.fromarray(np.full((48, 64), 7.5, np.float32)),
        "mode_CMYK.jpg": rgb.convert("CMYK"),
        "mode_YCbCr.jpg": rgb.convert("YCbCr"),
        "mode_I16B.tif": Image.frombytes("I;16B", (64, 48), rng.integers(0, 256, 48 * 64 * 2, dtype=np.uint8).tobytes()),
        "mode_LAB.tif": Image.frombytes("LAB", (64, 48), rng.integers(0, 256, 48 * 64 * 3, dtype=np.uint8).tobytes()),
    }
    for name, image in modes.items():
        save = {"transparency": 0} if "transparency" in name else {}
        image.save(root / name, **save)
        good[name] = (48, 64)
    put("rgb16.png", _raw_png(64, 48, 16, 2, b"".join(b"\x00" + rng.integers(0, 256, 64 * 6, dtype=np.uint8).tobytes() for _ in range(48))))
    good["rgb16.png"] = (48, 64)
    frames = [Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).convert("P") for _ in range(3)]
    frames[0].save(root / "animated.gif", save_all=True, append_images=frames[1:])
    good["animated.gif"] = (48, 64)
    put("png_named.jpg", png)  # a wrong suffix is fine: the content decides
    good["png_named.jpg"] = (48, 64)
    # tiny and very elongated images (the model's stride-32 backbone sees a 1x1 grid or less)
    for name, (h, w) in {"one_pixel.png": (1, 1), "two_pixels.png": (1, 2), "row.png": (1, 3000),
                         "column.png": (3000, 1), "sliver.jpg": (3, 2500), "tall_sliver.jpg": (2500, 3)}.items():
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / name)
        good[name] = (h, w)
    return good, bad


def test_predict_survives_the_fuzz_corpus(model_dir: Path, tmp_path: Path) -> None:
    good, bad = make_bad_inputs(tmp_path / "in")
    total = len(list((tmp_path / "in").iterdir()))
    out = tmp_path / "out"
    result = invoke("predict", tmp_path / "in", "--out", out, "-w", model_dir, "--json")
    stderr = assert_clean_failure(result)
    summary = json.loads(result.stdout)
    assert summary["images"] == total
    assert summary["written"] + len(summary["failed"]) == total
    failed = {Path(f["path"]).name for f in summary["failed"]}
    assert bad <= failed, f"not reported: {sorted(bad - failed)}"
    assert not failed & set(good), f"decodable images refused: {sorted(failed & set(good))}"
    for entry in summary["failed"]:
        assert Path(entry["path"]).name in entry["error"] and "Replace the file" in entry["error"], entry
        assert Path(entry["path"]).name in stderr
    for name, (h, w) in good.items():
        mask = np.array(Image.open(out / Path(name).with_suffix(".png")))
        assert mask.shape == (h, w) and mask.dtype == np.uint8 and mask.max() < 19, name
    written = {p.name for p in out.iterdir()}
    for name in failed:
        assert Path(name).with_suffix(".png").name not in written, f"{name} failed but has a mask"
    assert not list(out.rglob("*.tmp")), "temporary files left behind"


@pytest.fixture
def model_inputs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """The shape of every input a FoR-Net model runs on in this test."""
    from fornet_cli.model import FornetModel

    shapes: list[tuple[int, ...]] = []
    real = FornetModel.forward_all

    def spy(self, x):
        shapes.append(tuple(x.shape))
        return real(self, x)

    monkeypatch.setattr(FornetModel, "forward_all", spy)
    return shapes


def test_an_image_too_large_for_whole_mode_is_refused_with_advice(model_dir: Path, tmp_path: Path,
                                                                  model_inputs: list[tuple[int, ...]]) -> None:
    # 4200 x 4200 = 17.6 MP of zeros: a 50 kB PNG; refused from its header, before anything is decoded
    Image.new("RGB", (4200, 4200)).save(tmp_path / "huge.png")
    Image.new("RGB", (64, 48)).save(tmp_path / "small.png")
    result = invoke("predict", tmp_path / "huge.png", tmp_path / "small.png", "--out", tmp_path / "out", "-w", model_dir)
    assert_clean_failure(result, "huge.png is 4200x4200 pixels (17.6 MP)", "--mode slide")
    assert (tmp_path / "out" / "small.png").is_file() and not (tmp_path / "out" / "huge.png").exists()
    assert model_inputs and all(max(shape[-2:]) < 1000 for shape in model_inputs), (
        f"the limit must be checked before running the model: {model_inputs}")
    # TTA scales the image up to 1.75x: the limit applies to the largest view
    Image.new("RGB", (3000, 3000)).save(tmp_path / "tta.png")
    before = len(model_inputs)
    tta = invoke("predict", tmp_path / "tta.png", "--out", tmp_path / "out2", "-w", model_dir, "--tta")
    assert_clean_failure(tta, "at the largest TTA scale 1.75", "--mode slide")
    assert model_inputs[before:] == [], "no view of a refused image may run through the model"


def test_slide_mode_predicts_what_whole_mode_refuses(model_dir: Path, tmp_path: Path) -> None:
    loaded = load_weights(model_dir)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (96, 160, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    limit = PredictConfig(max_whole_pixels=96 * 160 - 1)
    whole = predict_images(Predictor(loaded.model), loaded.meta, [tmp_path / "a.png"], tmp_path / "w", limit)
    assert whole.written == 0 and "--mode slide" in whole.failed[0][1]
    slide = Predictor(loaded.model, InferenceConfig(mode="slide", crop_size=(64, 64), stride=(48, 48)))
    done = predict_images(slide, loaded.meta, [tmp_path / "a.png"], tmp_path / "s", limit)
    assert done.written == 1 and np.array(Image.open(tmp_path / "s" / "a.png")).shape == (96, 160)


def test_a_decompression_bomb_is_refused_in_both_modes(model_dir: Path, tmp_path: Path) -> None:
    # the header claims 40000 x 40000 (1.6 gigapixels); the data is 4 bytes. Pillow refuses to decode it.
    (tmp_path / "bomb.png").write_bytes(_raw_png(40000, 40000, 8, 2, b"\x00" * 4))
    for mode in ("whole", "slide"):
        result = invoke("predict", tmp_path / "bomb.png", "--out", tmp_path / mode, "-w", model_dir, "--mode", mode)
        assert_clean_failure(result, "bomb.png is too large to decode safely")
        assert not (tmp_path / mode / "bomb.png").exists()


def _count_listings(monkeypatch: pytest.MonkeyPatch, root: Path) -> list[str]:
    """Every folder below ``root`` listed from now on (os.scandir: what os.walk and pathlib's glob use)."""
    listed: list[str] = []
    real = os.scandir

    def scandir(path=".") -> object:
        if isinstance(path, (str, os.PathLike)) and os.fspath(path).startswith(str(root)):
            listed.append(os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    return listed


def test_unicode_spaces_symlink_loops_and_odd_files_in_input_folders(model_dir: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "in put"
    deep = root / "日本 語" / "ça va"
    deep.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for path in (deep / "ïmage 1.png", root / "日本 語" / "🙂 smile.jpg", root / "top level.png"):
        Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(path)
    os.symlink("..", root / "日本 語" / "loop")  # back up to root: a cycle
    for i in range(3):  # several links into the same cycle: a naive recursive glob lists 3^depth paths
        os.symlink("../../日本 語", deep / f"loop{i}")
    os.symlink("/nonexistent/target.png", root / "dangling.png")
    os.mkfifo(root / "pipe.png")  # must never be opened (it would block)
    out = tmp_path / "ünï cødé out"
    expected = sorted(["top level.png", "日本 語/🙂 smile.png", "日本 語/ça va/ïmage 1.png"])
    listings = _count_listings(monkeypatch, root)
    result = invoke("predict", root, "--out", out, "-w", model_dir, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["written"] == 3
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == expected
    globbed = invoke("predict", f"{root}/**/*.png", f"{root}/**/*.jpg", "--out", tmp_path / "g", "-w", model_dir, "--json")
    assert globbed.exit_code == 0, globbed.stderr
    assert json.loads(globbed.stdout)["written"] == 3
    assert sorted(p.relative_to(tmp_path / "g").as_posix() for p in (tmp_path / "g").rglob("*.png")) == expected
    # the 3 real folders, and each of the 4 links into the cycle at most once per search (a naive search lists
    # 3^depth paths through the loops): both searches together stay far below that
    assert 0 < len(listings) <= 2 * 3 * 8, listings
    assert_clean_failure(invoke("predict", root / "pipe.png", "--out", tmp_path / "p", "-w", model_dir),
                         "is neither a file nor a folder")
    assert_clean_failure(invoke("predict", root / "dangling.png", "--out", tmp_path / "d", "-w", model_dir),
                         "does not exist")
    with pytest.raises(DataError, match="matches no image files"):
        find_images([f"{root}/**/*.webp"])


def test_inputs_that_would_share_a_mask_are_refused_before_anything_is_written(model_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    for name in ("a.png", "a.jpg", "b.png"):
        Image.new("RGB", (32, 24)).save(tmp_path / "in" / name)
    result = invoke("predict", tmp_path / "in", "--out", tmp_path / "out", "-w", model_dir, "--overwrite")
    assert_clean_failure(result, "a.jpg and", "a.png would both be written as a.png")
    assert not (tmp_path / "out").exists()


def test_out_that_is_a_file_or_a_bad_device_or_stride(model_dir: Path, tmp_path: Path) -> None:
    Image.new("RGB", (32, 24)).save(tmp_path / "a.png")
    (tmp_path / "taken").write_text("a file the user cares about")
    assert_clean_failure(invoke("predict", tmp_path / "a.png", "--out", tmp_path / "taken", "-w", model_dir), "is a file")
    assert (tmp_path / "taken").read_text() == "a file the user cares about"
    assert_clean_failure(invoke("predict", tmp_path / "a.png", "--out", tmp_path / "taken" / "sub", "-w", model_dir))
    assert_clean_failure(invoke("predict", tmp_path / "a.png", "--out", tmp_path / "o", "-w", model_dir, "--device", "tpu"),
                         "Unknown device 'tpu'")
    import torch

    if not torch.cuda.is_available():
        assert_clean_failure(invoke("predict", tmp_path / "a.png", "--out", tmp_path / "o", "-w", model_dir, "--device", "cuda"),
                             "no CUDA GPU")
    assert_clean_failure(invoke("predict", tmp_path / "a.png", "--out", tmp_path / "o", "-w", model_dir, "--mode", "slide",
                                "--crop", "16", "--stride", "40"), "stride (40, 40) is larger than the crop")
    assert not (tmp_path / "o").exists()
