"""Generated Cityscapes-layout ground truth (labelIds + instanceIds PNGs) and perturbed labelId predictions.

The scenes are random but shaped like the real thing: blocky regions of every label id (ignored ones and
void included), instances of every instance class (caravan and trailer included, which the official
evaluator skips), "group" regions of instance classes without an instance number, and predictions that
confuse classes, predict ignored ids and shift borders.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

INSTANCE_IDS = (24, 25, 26, 27, 28, 29, 30, 31, 32, 33)


def random_scene(rng: np.random.Generator, h: int, w: int, n_instances: int) -> tuple[np.ndarray, np.ndarray]:
    """labelIds (uint8) and instanceIds (uint16) of one scene."""
    block = 8
    coarse = rng.integers(0, 34, size=(h // block + 1, w // block + 1))
    # mostly evaluated stuff classes, some void
    stuff = np.array([7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 0, 1, 4, 6, 9])
    coarse = np.where(rng.random(coarse.shape) < 0.8, stuff[rng.integers(0, len(stuff), coarse.shape)], coarse)
    labels = np.kron(coarse, np.ones((block, block), dtype=np.int64))[:h, :w].astype(np.uint8)
    inst = labels.astype(np.uint16)
    for k in range(n_instances):
        cls = int(rng.choice(INSTANCE_IDS))
        y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
        bh, bw = int(rng.integers(2, max(3, h // 3))), int(rng.integers(2, max(3, w // 3)))
        yy, xx = np.ogrid[:h, :w]
        mask = ((yy - y) / bh) ** 2 + ((xx - x) / bw) ** 2 <= 1
        labels[mask] = cls
        # one in five is a "group" region: class id without instance number, as in Cityscapes
        inst[mask] = cls if rng.random() < 0.2 else cls * 1000 + k
    return labels, inst


def perturb(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    """A plausible wrong prediction: shifted borders, confused blocks, ignored ids, noise."""
    pred = np.roll(labels, shift=(int(rng.integers(-2, 3)), int(rng.integers(-2, 3))), axis=(0, 1)).copy()
    h, w = pred.shape
    for _ in range(6):
        y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
        pred[y : y + int(rng.integers(2, 12)), x : x + int(rng.integers(2, 12))] = rng.choice(
            [7, 8, 11, 21, 24, 25, 26, 29, 30, 0, 33]
        )
    noise = rng.random((h, w)) < 0.03
    pred[noise] = rng.integers(0, 34, size=int(noise.sum()))
    return pred.astype(np.uint8)


def write_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def write_dataset(
    root: Path,
    n_images: int = 4,
    size: tuple[int, int] = (48, 96),
    seed: int = 0,
    n_instances: int = 6,
    split: str = "val",
) -> tuple[Path, Path, list[str]]:
    """Writes ``root/gt/gtFine/<split>/<city>/...`` and ``root/pred/...``; returns (gt root, pred dir, keys)."""
    rng = np.random.default_rng(seed)
    gt_root, pred_dir = root / "gt", root / "pred"
    keys = []
    for i in range(n_images):
        city = ("aachen", "bremen")[i % 2]
        key = f"{city}_{i:06d}_{19 + i:06d}"
        keys.append(key)
        labels, inst = random_scene(rng, *size, n_instances)
        folder = gt_root / "gtFine" / split / city
        write_png(folder / f"{key}_gtFine_labelIds.png", labels)
        write_png(folder / f"{key}_gtFine_instanceIds.png", inst)
        # predictions in nested folders, named like the official submission format
        write_png(pred_dir / city / f"{key}_leftImg8bit.png", perturb(rng, labels))
    return gt_root, pred_dir, keys
