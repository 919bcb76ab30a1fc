"""ONNX graphs of in-memory models, exported on the fly for ``--runtime auto|onnxruntime`` and cached.

An entry is ``<cache>/onnx/<architecture>-<key>.onnx`` with a record ``<same name>.json`` beside it. The key is
a SHA-256 of everything the graph depends on: every tensor of the model's state (names, dtypes, shapes,
bytes: the weights and BatchNorm statistics), the model's class and configuration, its Top-K ratios and selector cue, which
outputs the graph has, the opset and exporter, and the versions of fornet, torch, onnx and onnxruntime. The
record holds the key and the graph file's size and SHA-256. Both files are written atomically (temporary
file + rename), the graph first; an entry is used only when its record parses, names this key and matches
the file byte for byte, and anything else (a half-copied cache, a flipped byte, a graph from another model
with a stale record) is rebuilt, never trusted. The cache holds at most :data:`MAX_ENTRIES` graphs and
:data:`MAX_BYTES` bytes; the least recently used go first.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._version import __version__
from ..export.exporter import ExportOptions, export_onnx
from ..export.onnx_graph import DEFAULT_OPSET, FocusTile, build_graph
from ..export.verify import compare, require_passed
from ..fsutil import atomic_path, atomic_write_text, user_cache_dir
from ..model.outputs import FocusContext, mask_thresholds

FORMAT = 3  # bump when what an entry holds changes (2: no float-to-float Cast of the outputs; 3: a "pooled" output)
MAX_ENTRIES = 16
MAX_BYTES = 2 * 1024**3
# The export is verified (against eager PyTorch, in onnxruntime) at this small size and at a second batch and
# size: cheap, and enough to catch a graph that froze a shape; the real image is checked again when it runs.
VERIFY_SIZE = (64, 128)


def cache_folder() -> Path:
    return user_cache_dir() / "onnx"


def cache_key(
    model: nn.Module, *, all_outputs: bool, opset: int = DEFAULT_OPSET, exporter: str = "legacy", tile: bool = False
) -> str:
    """The SHA-256 (hex) of everything the exported graph depends on (see the module docstring)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().data if t.numel() else b"")
    config = getattr(model, "config", None)
    described = {
        "format": FORMAT,
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "config": config.to_dict() if hasattr(config, "to_dict") else None,
        "topk_ratios": list(getattr(model, "topk_ratios", ()) or ()),
        # switchable at run time, as the ratios; the graph is exported in eval mode, so that mode's cue
        "selector_cue": model.selector_cue_in(training=False) if hasattr(model, "selector_cue_in") else None,
        "all_outputs": all_outputs,
        "graph": "focus-tile" if tile else "image",
        "opset": opset,
        "exporter": exporter,
        "versions": _versions(),
    }
    digest.update(json.dumps(described, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime

    return {"fornet": __version__, "torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}


def entry_paths(model: nn.Module, key: str, tile: bool = False) -> tuple[Path, Path]:
    name = (getattr(model, "name", "") or type(model).__name__.lower()) + ("-tile" if tile else "")
    graph = cache_folder() / f"{name}-{key[:24]}.onnx"
    return graph, graph.with_suffix(".json")


def cached_graph(
    model: nn.Module, *, all_outputs: bool, opset: int = DEFAULT_OPSET, say: Callable[[str], None] | None = None
) -> tuple[Path, bool]:
    """The path of a verified ONNX graph of ``model`` (exported now unless a valid entry exists), and whether
    it came from the cache. ``say`` hears why an entry was rebuilt."""

    def export(target: Path) -> None:
        export_onnx(
            copy.deepcopy(model).to("cpu").eval(), target,
            ExportOptions(height=VERIFY_SIZE[0], width=VERIFY_SIZE[1], all_outputs=all_outputs, opset=opset, overwrite=True),
        )

    return _entry(model, cache_key(model, all_outputs=all_outputs, opset=opset), False, export, say)


def cached_tile_graph(
    model: nn.Module, *, opset: int = DEFAULT_OPSET, say: Callable[[str], None] | None = None
) -> tuple[Path, bool]:
    """As :func:`cached_graph`, for a FoR-Net model's focus tile graph (``FocusTile``: image, pooled and
    thresholds in, logits out), verified in onnxruntime against eager PyTorch before it is cached."""

    def export(target: Path) -> None:
        reference = copy.deepcopy(model).to("cpu").eval()
        with atomic_path(target) as tmp:
            build_graph(FocusTile(copy.deepcopy(reference)), tmp, torch.zeros(2, 3, *VERIFY_SIZE), opset=opset)
            _verify_tile_graph(reference, tmp)

    return _entry(model, cache_key(model, all_outputs=False, opset=opset, tile=True), True, export, say)


def _entry(
    model: nn.Module, key: str, tile: bool, export: Callable[[Path], None], say: Callable[[str], None] | None
) -> tuple[Path, bool]:
    """The entry of ``key``: used when valid, else written by ``export`` (atomically) with its record."""
    graph, record = entry_paths(model, key, tile=tile)
    problem = entry_problem(graph, record, key)
    if problem is None:
        os.utime(record)  # least recently used goes first when the cache is pruned
        return graph, True
    if problem != "missing" and say is not None:
        say(f"the cached ONNX graph {graph.name} is {problem}; exporting it again")
    export(graph)
    atomic_write_text(record, json.dumps({"key": key, **_file_facts(graph)}, indent=2) + "\n")
    prune(keep=graph)
    return graph, False


def _verify_tile_graph(model: nn.Module, path: Path) -> None:
    """The tile graph against eager PyTorch on a tile with another image's context (raises ExportError)."""
    from ..export.onnx_session import create_session

    x = torch.randn(1, 3, 96, 160, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        other = model.forward_all(torch.randn(1, 3, 128, 256, generator=torch.Generator().manual_seed(1)))
        focus = FocusContext(other.pooled, mask_thresholds(other.importance, other.masks))
        reference = model.forward_all(x, focus).logits
    feed = {"image": x.numpy(), "pooled": focus.pooled.numpy(), "thresholds": focus.thresholds.numpy()}
    (got,) = create_session(path, "cpu").run(["logits"], feed)
    require_passed([compare(reference, got, "fp32", "onnxruntime CPU (focus tile graph)", shape=x.shape)],
                   "focus tile graph")


def entry_problem(graph: Path, record: Path, key: str) -> str | None:
    """None when the entry can be used; otherwise what is wrong with it ("missing", "damaged", ...)."""
    if not graph.is_file() and not record.is_file():
        return "missing"
    try:
        facts = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return "without a readable record"
    if not isinstance(facts, dict) or facts.get("key") != key:
        return "recorded for another model"
    try:
        actual = _file_facts(graph)
    except OSError:
        return "missing its graph file"
    if actual != {k: facts.get(k) for k in actual}:
        return "damaged (its bytes differ from the record)"
    return None


def _file_facts(path: Path) -> dict[str, Any]:
    with open(path, "rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    return {"bytes": path.stat().st_size, "sha256": digest}


def discard(graph: Path) -> None:
    """Remove an entry (e.g. one whose graph disagreed with eager PyTorch), so that the next run rebuilds it."""
    graph.with_suffix(".json").unlink(missing_ok=True)
    graph.unlink(missing_ok=True)


def prune(keep: Path | None = None) -> None:
    """Delete the least recently used entries beyond :data:`MAX_ENTRIES` or :data:`MAX_BYTES` (never ``keep``)."""
    folder = cache_folder()
    entries = []
    for graph in folder.glob("*.onnx"):
        record = graph.with_suffix(".json")
        try:
            used = record.stat().st_mtime if record.exists() else graph.stat().st_mtime
            entries.append((used, graph.stat().st_size, graph))
        except OSError:  # removed by another process meanwhile
            continue
    entries.sort(reverse=True)  # newest first
    total = 0
    for i, (_, size, graph) in enumerate(entries):
        total += size
        if graph != keep and (i >= MAX_ENTRIES or total > MAX_BYTES):
            discard(graph)
