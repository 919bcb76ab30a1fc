"""Fixtures of the robustness tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from readonly import unchanged_folder

from fornet_cli.data.synth import generate_dataset


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """6 train + 2 val generated frames at 64x128 in Cityscapes layout (shared: treat as read-only)."""
    root = tmp_path_factory.mktemp("tiny-synth")
    generate_dataset(root, train=6, val=2, size=(64, 128), seed=0, overwrite=True)
    with unchanged_folder(root, "tiny_data"):
        yield root


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: these tests run tiny images, and with two OpenMP threads on a busy 2-core machine
    each forward pass waits on a spinning peer (measured: 1.4 s instead of 0.01 s for a 48x64 image)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
