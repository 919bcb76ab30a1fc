"""Shared test fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from readonly import unchanged_folder

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


@pytest.fixture(scope="session", autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """fornet's cache (ONNX graphs of --runtime auto, generated sets) in a folder of this session, never the
    user's; subprocesses inherit it. Tests that need their own set FORNET_CACHE themselves."""
    old = os.environ.get("FORNET_CACHE")
    os.environ["FORNET_CACHE"] = str(tmp_path_factory.mktemp("fornet-cache"))
    yield
    if old is None:
        os.environ.pop("FORNET_CACHE", None)
    else:
        os.environ["FORNET_CACHE"] = old


@pytest.fixture(autouse=True)
def _own_settings(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test reads or writes the real user's settings (default weights): each gets an empty config folder."""
    folder = tmp_path_factory.mktemp("settings")
    monkeypatch.setenv("FORNET_CONFIG_DIR", str(folder))
    monkeypatch.delenv("FORNET_WEIGHTS_DEFAULT", raising=False)
    return folder


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fornet_mbv3 with random weights (seed 0) and calibrated BatchNorm statistics (model/calibrate.py),
    saved by the project in the published format."""
    import fornet_cli
    from fornet_cli.data.labels import CLASS_NAMES, TRAIN_ID_TO_COLOR
    from fornet_cli.model.calibrate import calibrate_batchnorm
    from fornet_cli.weights.format import meta_for, save_pretrained

    torch.manual_seed(0)
    model = calibrate_batchnorm(fornet_cli.create_model("fornet_mbv3"))
    folder = tmp_path_factory.mktemp("mbv3-random")
    save_pretrained(model, folder, meta_for(model, CLASS_NAMES, TRAIN_ID_TO_COLOR[:19].tolist()))
    with unchanged_folder(folder, "model_dir"):
        yield folder


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test with a ``variant`` argument runs for every registered variant (tests/variant_params.py)."""
    from variant_params import parametrize_variants

    parametrize_variants(metafunc)
