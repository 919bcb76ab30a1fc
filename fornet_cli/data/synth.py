"""A synthetic street-scene dataset in the exact Cityscapes layout and naming.

::

    OUT/leftImg8bit/{split}/{city}/{city}_{seq:06d}_000019_leftImg8bit.png
    OUT/gtFine/{split}/{city}/{city}_{seq:06d}_000019_gtFine_labelIds.png      label ids (uint8)
    OUT/gtFine/{split}/{city}/{city}_{seq:06d}_000019_gtFine_instanceIds.png   id, or id * 1000 + k (16 bit)
    OUT/gtFine/{split}/{city}/{city}_{seq:06d}_000019_gtFine_color.png         official colours (RGBA)
    OUT/fornet_synth.json                                                      how it was made

or, with ``layout="folder"``, the folder layout of :mod:`.synth_folder` (``OUT/{split}/images|masks/``).

Frame i of a split depends only on (seed, split, i): a larger set starts with the frames of a smaller one.
The scenes are drawn by :mod:`.scenes`.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import shutil
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from ..fsutil import user_cache_dir
from .cityscapes import COLOR_SUFFIX, IMAGE_DIR, IMAGE_SUFFIX, INSTANCE_SUFFIX, LABEL_DIR, LABEL_SUFFIX
from .io import write_png
from .labels import LABELS, NUM_LABEL_IDS
from .scenes import FEATURES, render_scene
from .synth_folder import SynthClasses, refuse_foreign, synth_classes, write_classes, write_folder_frame

LAYOUTS = ("cityscapes", "folder")

MARKER = "fornet_synth.json"
CITIES: dict[str, tuple[str, ...]] = {  # invented names, so that nobody mistakes them for real frames
    "train": ("aldenburg", "brunnstadt", "corvingen", "dallmark"),
    "val": ("eberfeld", "fennwick"),
}
_SPLIT_KEY = {"train": 0, "val": 1}
FRAME = 19  # Cityscapes annotates the 20th frame of each snippet: *_000019_*

# label id -> official colour, alpha 255 (the *_gtFine_color.png files are RGBA)
ID_TO_RGBA = np.zeros((256, 4), dtype=np.uint8)
ID_TO_RGBA[:, 3] = 255
for _lb in LABELS:
    if 0 <= _lb.id < NUM_LABEL_IDS:
        ID_TO_RGBA[_lb.id, :3] = _lb.color


@dataclass(frozen=True)
class SynthResult:
    """What :func:`generate_dataset` wrote."""

    root: Path
    counts: dict[str, int]
    size: tuple[int, int]
    seed: int
    seconds: float
    label_pixels: list[int] = field(default_factory=list)  # pixels per label id 0..33 over all frames


def frame_name(split: str, index: int) -> tuple[str, str]:
    """(city, "{city}_{seq:06d}_{frame:06d}") of frame ``index`` of ``split``."""
    cities = CITIES[split]
    city = cities[index % len(cities)]
    return city, f"{city}_{index // len(cities):06d}_{FRAME:06d}"


def featured(index: int) -> tuple[str, str]:
    """The two rarer things frame ``index`` is sure to show: every 11 consecutive frames show each twice."""
    n = len(FEATURES)
    return FEATURES[index % n], FEATURES[(index + 5) % n]


def frame_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, _SPLIT_KEY[split], index]))


def write_frame(
    root: Path, split: str, index: int, size: tuple[int, int], seed: int, folder: SynthClasses | None = None
) -> np.ndarray:
    """Render and write frame ``index`` of ``split`` (in the folder layout when ``folder`` gives its classes);
    returns its pixels per label id."""
    scene = render_scene(frame_rng(seed, split, index), size, featured(index))
    city, name = frame_name(split, index)
    if folder is not None:
        write_folder_frame(root, split, name, scene.image, scene.label_ids, folder)
        return np.bincount(scene.label_ids.ravel(), minlength=NUM_LABEL_IDS)[:NUM_LABEL_IDS]
    gt = root / LABEL_DIR / split / city
    # The noisy picture barely compresses: a fast level saves most of the time; the flat label maps compress well.
    write_png(root / IMAGE_DIR / split / city / (name + IMAGE_SUFFIX), scene.image, compress_level=1)
    write_png(gt / (name + LABEL_SUFFIX), scene.label_ids)
    write_png(gt / (name + INSTANCE_SUFFIX), scene.instance_ids.astype(np.uint16))
    write_png(gt / (name + COLOR_SUFFIX), ID_TO_RGBA[scene.label_ids])
    return np.bincount(scene.label_ids.ravel(), minlength=NUM_LABEL_IDS)[:NUM_LABEL_IDS]


def _write_frame_task(args: tuple[Path, str, int, tuple[int, int], int, SynthClasses | None]) -> np.ndarray:
    return write_frame(*args)


def generate_dataset(
    out: Path | str,
    train: int = 80,
    val: int = 20,
    size: tuple[int, int] = (512, 1024),
    seed: int = 0,
    *,
    overwrite: bool = False,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
    layout: str = "cityscapes",
    classes: str | Path | None = None,
) -> SynthResult:
    """Write ``train`` + ``val`` synthetic frames of ``size`` (height, width) under ``out``.

    ``layout="folder"`` writes the folder layout with the classes ``classes`` names (None or ``cityscapes``:
    the 19 training classes; else a remap file, see :mod:`.synth_folder`).

    ``out`` must be empty or new. With ``overwrite`` a set generated before by fornet is replaced (its
    ``leftImg8bit/`` and ``gtFine/`` are removed first); fornet never writes into a Cityscapes-layout folder it
    did not make. ``workers`` > 1 renders in that many processes. ``progress(done, total)`` follows each frame.
    """
    h, w = size
    if h < 32 or w < 32:
        raise ConfigError(f"size {h}x{w} is too small for a street scene; use at least 32x32, e.g. 512x1024.")
    if train < 0 or val < 0 or train + val == 0:
        raise ConfigError(f"asked for {train} train and {val} val frames; ask for at least one frame.")
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, not {workers}.")
    if layout not in LAYOUTS:
        raise ConfigError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}.")
    if classes is not None and layout != "folder":
        raise ConfigError("classes are chosen for the folder layout only (--layout folder); the Cityscapes layout "
                          "always writes label ids.")
    folder = synth_classes(classes) if layout == "folder" else None  # a bad remap fails before any folder is touched
    root = _prepare(Path(out), overwrite, layout)
    info = {"generator": "fornet data synth", "seed": seed, "size": [h, w], "counts": {"train": train, "val": val},
            "layout": layout}
    _write_marker(root, {**info, "complete": False})
    if folder is not None:
        write_classes(root, folder)
    start = time.perf_counter()
    tasks = [(root, split, i, (h, w), seed, folder) for split, n in (("train", train), ("val", val)) for i in range(n)]
    pixels = np.zeros(NUM_LABEL_IDS, dtype=np.int64)
    if workers == 1 or len(tasks) == 1:
        results = map(_write_frame_task, tasks)
        pixels = _collect(results, pixels, len(tasks), progress)
    else:
        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            pixels = _collect(pool.map(_write_frame_task, tasks, chunksize=2), pixels, len(tasks), progress)
    seconds = time.perf_counter() - start
    _write_marker(root, {**info, "complete": True, "seconds": round(seconds, 2)})
    return SynthResult(root, {"train": train, "val": val}, (h, w), seed, seconds, pixels.tolist())


def _collect(
    results: Iterable[np.ndarray], pixels: np.ndarray, total: int, progress: Callable[[int, int], None] | None
) -> np.ndarray:
    for done, counts in enumerate(results, 1):
        pixels += counts
        if progress is not None:
            progress(done, total)
    return pixels


def _prepare(out: Path, overwrite: bool, layout: str = "cityscapes") -> Path:
    if out.exists() and not out.is_dir():
        raise DataError(f"{out} is a file; give a folder to write the dataset into.")
    if out.is_dir() and any(out.iterdir()):
        ours = (out / MARKER).is_file()
        if not overwrite:
            what = "holds a synthetic set made before" if ours else "is not empty"
            raise DataError(f"{out} {what}. Choose an empty or new folder, or pass --overwrite to replace it.")
        if not ours and ((out / IMAGE_DIR).exists() or (out / LABEL_DIR).exists()):
            raise DataError(
                f"{out} holds {IMAGE_DIR}/ or {LABEL_DIR}/ that fornet did not generate (no {MARKER}); fornet will "
                "not write into it, even with --overwrite. Choose another folder."
            )
        if not ours and layout == "folder":
            refuse_foreign(out)
        if ours:
            for sub in (IMAGE_DIR, LABEL_DIR, "train", "val"):
                if (out / sub).is_dir():
                    shutil.rmtree(out / sub)
            (out / "classes.json").unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _write_marker(root: Path, info: dict[str, object]) -> None:
    tmp = root / f".{MARKER}.tmp"
    tmp.write_text(json.dumps(info, indent=2) + "\n")
    tmp.replace(root / MARKER)


def default_synth_root(train: int, val: int, size: tuple[int, int], seed: int) -> Path:
    """Where a generated set with these settings is cached: ``$FORNET_CACHE/synth/...`` (default
    ``$XDG_CACHE_HOME/fornet`` or ``~/.cache/fornet``)."""
    h, w = size
    return user_cache_dir() / "synth" / f"{h}x{w}-train{train}-val{val}-seed{seed}"


def ensure_synth_dataset(
    root: Path | str,
    train: int,
    val: int,
    size: tuple[int, int],
    seed: int,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """``root`` holding a complete generated set with these settings: reused when it is there, else generated
    (an incomplete or different set that fornet made there is replaced)."""
    root = Path(root)
    marker = root / MARKER
    if marker.is_file():
        try:
            info = json.loads(marker.read_text())
        except (OSError, ValueError):
            info = {}
        same = info.get("seed") == seed and info.get("size") == list(size)
        if same and info.get("complete") and info.get("counts") == {"train": train, "val": val}:
            return root
    generate_dataset(root, train, val, size, seed, overwrite=marker.is_file(), progress=progress)
    return root


def result_dict(result: SynthResult) -> dict[str, object]:
    """A JSON-friendly view of a :class:`SynthResult`."""
    out = asdict(result)
    out["root"] = str(result.root)
    return out
