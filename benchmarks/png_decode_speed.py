"""PNG decoding and encoding: Pillow, torchvision's ``decode_png``, OpenCV, imagecodecs (libpng) and pyspng
(libspng, when installed) on the same files; and the encoders that write label maps.

Decodes generated 1024 x 2048 label files (``eval_speed.frame``: 8-bit labelIds, 16-bit instanceIds, 8-bit
predictions, and the predictions saved as palette PNGs) and, when present, the genuine Cityscapes files
under ``shared/fixtures`` (read in place), in one process and interleaved rounds. Every decoder must give
the array Pillow gives (``np.array(Image.open(f))``, as the official evaluator reads files) bit for bit;
a decoder that gives another array for a kind of file is reported and not timed on it. The bytes are read
once beforehand: this times decoding, not the disk. Report ratios, not absolute times. ``--photos`` adds the
fixture's RGB frames (what `fornet predict` decodes). The encoder race writes generated label maps with each
encoder and reports encoding time, file size and the decoding time of the result (every file must decode to
the same array).

    python benchmarks/png_decode_speed.py --images 4 --rounds 15
    python benchmarks/png_decode_speed.py --images 4 --rounds 15 --threads 2
    python benchmarks/png_decode_speed.py --images 4 --rounds 9 --photos --encoders
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_speed import _cpu_name, frame, prediction  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("FORNET_FIXTURES", ROOT.parent / "shared" / "fixtures"))

with warnings.catch_warnings():  # torchvision 0.29 deprecates its image I/O
    warnings.simplefilter("ignore", DeprecationWarning)
    from torchvision.io import ImageReadMode, decode_png


def pillow(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.array(im)


def torchvision(data: bytes) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        image = decode_png(torch.frombuffer(bytearray(data), dtype=torch.uint8), ImageReadMode.UNCHANGED)
    return image[0].numpy() if image.shape[0] == 1 else image.permute(1, 2, 0).numpy()


def opencv_rgb(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return image[..., ::-1] if image is not None and image.ndim == 3 else image


DECODERS: dict[str, Callable[[bytes], np.ndarray]] = {
    "Pillow": pillow,
    "torchvision decode_png": torchvision,
    "cv2.imdecode IMREAD_UNCHANGED": opencv_rgb,
}
try:
    import imagecodecs

    DECODERS["imagecodecs png_decode (fornet)"] = imagecodecs.png_decode
except ImportError:
    imagecodecs = None
try:
    import pyspng

    DECODERS["pyspng"] = pyspng.load
except ImportError:
    pass


def encoders() -> dict[str, Callable[[np.ndarray], bytes]]:
    def pil(level: int) -> Callable[[np.ndarray], bytes]:
        def encode(a: np.ndarray) -> bytes:
            buf = io.BytesIO()
            Image.fromarray(a).save(buf, format="PNG", compress_level=level)
            return buf.getvalue()
        return encode

    found = {"Pillow level 6 (default)": pil(6), "Pillow level 1": pil(1),
             "cv2.imencode (default)": lambda a: cv2.imencode(".png", a)[1].tobytes()}
    if imagecodecs is not None:
        from fornet_cli.data.png import encode as fornet_encode

        found["imagecodecs Up filter, level 3 (fornet)"] = fornet_encode  # type: ignore[assignment]
        found["imagecodecs level 1, Sub filter, RLE (OpenCV's fast settings)"] = lambda a: imagecodecs.png_encode(
            a, level=1, strategy=3, filter=imagecodecs.PNG.FILTER.SUB)
    return found


def encoder_race(arrays: list[np.ndarray], rounds: int) -> None:
    print(f"\n### Encoding {len(arrays)} generated label maps (8-bit, 1024 x 2048): ms per file, median of {rounds}\n")
    print("| encoder | encode ms | kB per file | decode ms (Pillow) | decode ms (fornet's reader) |")
    print("| --- | --- | --- | --- | --- |")
    from fornet_cli.data.label_png import read_label_png

    for name, encode in encoders().items():
        files = [encode(a) for a in arrays]
        assert all(np.array_equal(pillow(f), a) for f, a in zip(files, arrays)), name
        enc, dec, ours = [], [], []
        for _ in range(rounds):
            start = time.perf_counter()
            files = [encode(a) for a in arrays]
            enc.append((time.perf_counter() - start) / len(arrays))
            start = time.perf_counter()
            for f in files:
                pillow(f)
            dec.append((time.perf_counter() - start) / len(arrays))
            paths = []
            for i, f in enumerate(files):
                path = Path(f"/tmp/fornet-png-race-{os.getpid()}-{i}.png")
                path.write_bytes(f)
                paths.append(path)
            start = time.perf_counter()
            for path in paths:
                read_label_png(path)
            ours.append((time.perf_counter() - start) / len(arrays))
            for path in paths:
                path.unlink()
        size = sum(map(len, files)) / len(files) / 1024
        print(f"| {name} | {1000 * statistics.median(enc):.2f} | {size:.0f} | {1000 * statistics.median(dec):.2f} | "
              f"{1000 * statistics.median(ours):.2f} |")


def _png(array: np.ndarray, mode: str | None = None) -> bytes:
    image = Image.fromarray(array)
    if mode == "P":
        image = Image.frombytes("P", image.size, array.tobytes())
        image.putpalette([v for i in range(256) for v in (i, (37 * i) % 256, (91 * i) % 256)])
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def generated(n: int, seed: int) -> dict[str, list[bytes]]:
    rng = np.random.default_rng(seed)
    kinds: dict[str, list[bytes]] = {"labelIds (L)": [], "instanceIds (I;16)": [], "prediction (L)": [],
                                     "prediction (P)": []}
    for _ in range(n):
        labels, inst = frame(rng)
        pred = prediction(rng, labels)
        kinds["labelIds (L)"].append(_png(labels))
        kinds["instanceIds (I;16)"].append(_png(inst))
        kinds["prediction (L)"].append(_png(pred))
        kinds["prediction (P)"].append(_png(pred, "P"))
    return kinds


def fixtures(photos: bool = False) -> dict[str, list[bytes]]:
    kinds: dict[str, list[bytes]] = {}
    for path in sorted(FIXTURES.glob("cityscapes-*/**/*.png")):
        if "leftImg8bit" in path.parts and not photos:  # photos, not label maps
            continue
        with Image.open(path) as im:
            mode = im.mode
        kind = "prediction" if "predictions" in path.parts else path.stem.rsplit("_", 1)[-1]
        kinds.setdefault(f"{kind} ({mode})", []).append(path.read_bytes())
    return kinds


def race(title: str, kinds: dict[str, list[bytes]], rounds: int, threads: int) -> None:
    print(f"\n### {title}: ms per file, median and minimum of {rounds} rounds ({threads} threads decode the "
          "files of a kind in parallel)\n")
    print("| files | decoder | median | min | Pillow / this (medians) |\n| --- | --- | --- | --- | --- |")
    pool = ThreadPoolExecutor(threads) if threads > 1 else None
    for kind, files in kinds.items():
        reference = [pillow(f) for f in files]
        usable = {}
        for name, decode in DECODERS.items():
            try:
                same = all(np.array_equal(out := decode(f), r) and out.dtype == r.dtype for f, r in zip(files, reference))
            except Exception as exc:  # a decoder that refuses the kind
                same, why = False, f"{type(exc).__name__}"
            else:
                why = "another array than Pillow's"
            if same:
                usable[name] = decode
            else:
                print(f"| {kind}, {len(files)} | {name} | {why} | - | - |")
        times: dict[str, list[float]] = {k: [] for k in usable}
        for _ in range(rounds):
            for name, decode in usable.items():
                start = time.perf_counter()
                if pool is None:
                    for f in files:
                        decode(f)
                else:
                    list(pool.map(decode, files))
                times[name].append((time.perf_counter() - start) / len(files))
        base = statistics.median(times["Pillow"])
        for name, ts in times.items():
            med = statistics.median(ts)
            print(f"| {kind}, {len(files)} | {name} | {1000 * med:.2f} | {1000 * min(ts):.2f} | {base / med:.2f}x |")
    if pool is not None:
        pool.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=4, help="generated 1024x2048 frames")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="decode each kind's files on this many threads")
    ap.add_argument("--photos", action="store_true", help="also the fixture's RGB frames (leftImg8bit)")
    ap.add_argument("--encoders", action="store_true", help="also race the encoders on generated label maps")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"machine: {os.cpu_count()} cores, {_cpu_name()}; Pillow {Image.__version__}, "
          f"torch {torch.__version__}, opencv {cv2.__version__}, OpenCV threads {cv2.getNumThreads()}")
    race(f"{args.images} generated 1024x2048 frames", generated(args.images, args.seed), args.rounds, args.threads)
    real = fixtures(args.photos)
    if real:
        race("Cityscapes files in shared/fixtures", real, args.rounds, args.threads)
    if args.encoders:
        rng = np.random.default_rng(args.seed)
        encoder_race([prediction(rng, frame(rng)[0]) for _ in range(args.images)], args.rounds)


if __name__ == "__main__":
    main()
