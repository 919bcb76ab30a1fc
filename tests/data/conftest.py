"""Fixtures for the data tests: a small generated set and hand-made Cityscapes layouts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from readonly import unchanged_folder

from fornet_cli.data.io import write_png
from fornet_cli.data.synth import generate_dataset

SYNTH_SIZE = (128, 256)
SYNTH_TRAIN, SYNTH_VAL = 20, 2


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """20 train + 2 val generated frames at 128x256 (shared: treat as read-only)."""
    root = tmp_path_factory.mktemp("synth") / "set"
    generate_dataset(root, train=SYNTH_TRAIN, val=SYNTH_VAL, size=SYNTH_SIZE, seed=0)
    with unchanged_folder(root, "synth_root"):
        yield root


def make_layout(
    root: Path,
    split: str = "train",
    n: int = 2,
    size: tuple[int, int] = (8, 16),
    city: str = "aachen",
    *,
    labels: bool = True,
    instances: bool = True,
    seed: int = 0,
) -> list[str]:
    """Write ``n`` frames of random content in the official layout; returns their names."""
    rng = np.random.default_rng(seed)
    h, w = size
    names = []
    for i in range(n):
        name = f"{city}_{i:06d}_000019"
        names.append(name)
        write_png(
            root / "leftImg8bit" / split / city / f"{name}_leftImg8bit.png",
            rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
        )
        if labels:
            ids = rng.integers(0, 34, (h, w), dtype=np.uint8)
            write_png(root / "gtFine" / split / city / f"{name}_gtFine_labelIds.png", ids)
            if instances:
                inst = ids.astype(np.int32)
                inst[ids == 26] = 26000 + (np.arange((ids == 26).sum()) % 3)  # three cars
                write_png(root / "gtFine" / split / city / f"{name}_gtFine_instanceIds.png", inst)
    return names


@pytest.fixture
def layout() -> object:
    """:func:`make_layout`, for tests that build their own (broken) datasets."""
    return make_layout
