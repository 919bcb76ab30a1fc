"""Guards for module- and session-scoped fixtures, which many tests share: a test must never change them (it
copies what it wants to change). A fixture wraps its ``yield`` in one of these; a change fails its teardown
with the names of what changed."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch


def tree_digest(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file below ``folder`` (``/`` for folders, ``->target`` for links)."""
    digest = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink():
            digest[rel] = f"->{path.readlink()}"
        elif path.is_dir():
            digest[rel] = "/"
        else:
            digest[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest


@contextmanager
def unchanged_folder(folder: Path, what: str) -> Iterator[None]:
    before = tree_digest(folder)
    yield
    after = tree_digest(folder)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"a test changed the shared {what} at {folder} (copy it instead): {changed[:20]}"


@contextmanager
def unchanged_model(model: torch.nn.Module, what: str) -> Iterator[None]:
    """The model's tensors, its train/eval mode and (FoR-Net) its Top-K ratios stay as they were."""
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    mode, ratios = model.training, getattr(model, "topk_ratios", None)
    yield
    now = model.state_dict()
    changed = sorted(k for k in state.keys() | now.keys() if k not in state or k not in now or not torch.equal(state[k], now[k]))
    assert not changed, f"a test changed the weights of the shared {what}: {changed[:20]}"
    assert model.training == mode, f"a test changed the train/eval mode of the shared {what}"
    assert getattr(model, "topk_ratios", None) == ratios, f"a test changed the Top-K ratios of the shared {what}"
