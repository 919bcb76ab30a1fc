"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def fixtures_dir() -> Path:
    """The genuine Cityscapes fixtures: ``$FORNET_FIXTURES`` or ``../shared/fixtures`` from the project root."""
    return Path(os.environ.get("FORNET_FIXTURES", ROOT.parent / "shared" / "fixtures"))


@pytest.fixture
def real_fixtures() -> Path:
    path = fixtures_dir()
    if not (path / "cityscapes-mini").is_dir():
        pytest.skip(f"genuine Cityscapes fixtures not found at {path} (set FORNET_FIXTURES to their folder)")
    return path


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
