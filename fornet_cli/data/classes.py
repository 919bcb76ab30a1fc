"""A data set's classes: names, colours and the ignore index, from ``classes.json`` / ``classes.yaml`` or the
ready ``cityscapes`` preset (Cityscapes' 19 training classes, for KITTI semantic, ACDC, BDD100K masks, ...).

::

    {"classes": [{"name": "road", "color": [128, 64, 128]}, ...], "ignore_index": 255}

The class index is the position in the list. An entry may name its ``index``; then every entry does, and the
indices are 0..N-1, each once (the list is put in that order). Masks hold one class index per pixel, or the
ignore index for pixels not to learn from or score.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from .labels import CLASS_NAMES, IGNORE_INDEX, TRAIN_ID_TO_COLOR

CITYSCAPES = "cityscapes"  # the preset's name, for --classes
CLASS_FILES = ("classes.json", "classes.yaml", "classes.yml")
MAX_CLASSES = 255  # masks are 8-bit PNGs, and one value is the ignore index
_ENTRY_KEYS = {"name", "color", "index"}
RGB = tuple[int, int, int]


@dataclass(frozen=True)
class ClassSet:
    """The classes of a data set (index = position), their colours and the mask value that is ignored."""

    names: tuple[str, ...]
    colors: tuple[RGB, ...]
    ignore_index: int = IGNORE_INDEX
    source: str = ""  # where they came from, for messages

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @property
    def is_cityscapes(self) -> bool:
        """Cityscapes' 19 training classes in their order: the Cityscapes-only scores apply."""
        return self.names == CLASS_NAMES

    @property
    def palette(self) -> list[list[int]]:
        return [list(c) for c in self.colors]

    def to_dict(self) -> dict[str, Any]:
        """The classes.json document."""
        return {"classes": [{"name": n, "color": list(c)} for n, c in zip(self.names, self.colors)],
                "ignore_index": self.ignore_index}


def cityscapes_classes() -> ClassSet:
    """Cityscapes' 19 training classes with the official colours (masks hold train ids, 255 = ignore)."""
    colors = tuple(tuple(int(v) for v in TRAIN_ID_TO_COLOR[i]) for i in range(len(CLASS_NAMES)))
    return ClassSet(CLASS_NAMES, colors, IGNORE_INDEX, f"the {CITYSCAPES} preset")  # type: ignore[arg-type]


def find_classes_file(root: Path) -> Path | None:
    """``root``'s classes.json (or classes.yaml / classes.yml), or None."""
    return next((root / name for name in CLASS_FILES if (root / name).is_file()), None)


def resolve_classes(spec: str | Path | None, root: Path | None) -> ClassSet:
    """The classes named by ``--classes`` (the ``cityscapes`` preset or a file), else ``root``'s classes file."""
    if spec is not None and str(spec) == CITYSCAPES:
        return cityscapes_classes()
    if spec is not None:
        return load_classes(Path(spec))
    found = find_classes_file(root) if root is not None else None
    if found is None:
        where = f"{root} has no {' or '.join(CLASS_FILES[:2])}" if root is not None else "no classes file was given"
        raise DataError(
            f"{where}. A folder data set names its classes in DIR/classes.json, e.g. "
            '{"classes": [{"name": "road", "color": [128, 64, 128]}, ...], "ignore_index": 255}; or pass '
            f"--classes FILE, or --classes {CITYSCAPES} for masks of Cityscapes' 19 training ids."
        )
    return load_classes(found)


def read_document(path: Path) -> Any:
    """A JSON or YAML file's content; DataError for a missing, unreadable or malformed file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"Cannot read the classes file {path} ({exc}). Check the path.") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(text)
        return json.loads(text)
    except Exception as exc:  # json.JSONDecodeError, yaml.YAMLError: say which file and why
        raise DataError(f"The classes file {path} is not valid {path.suffix.lstrip('.').upper() or 'JSON'}: "
                        f"{str(exc).splitlines()[0]}. Fix its syntax.") from None


def load_classes(path: Path, *, allow: Sequence[str] = ()) -> ClassSet:
    """Read and check a classes file (see the module doc); ``allow`` names extra entry keys to accept."""
    return parse_classes(read_document(path), str(path), allow=allow)[0]


def parse_classes(data: Any, source: str, *, allow: Sequence[str] = ()) -> tuple[ClassSet, list[Mapping[str, Any]]]:
    """A classes document -> (ClassSet, its entries in index order); DataError naming what is wrong."""
    example = '{"classes": [{"name": "road", "color": [128, 64, 128]}, ...], "ignore_index": 255}'
    if not isinstance(data, Mapping) or not isinstance(data.get("classes"), list) or not data["classes"]:
        raise DataError(f"{source} must hold a non-empty list of classes: {example}.")
    unknown = sorted(set(data) - {"classes", "ignore_index"})
    if unknown:
        raise DataError(f"{source} has unknown key(s) {', '.join(map(repr, unknown))}; it holds \"classes\" and "
                        f"\"ignore_index\" only: {example}.")
    entries = _ordered(data["classes"], source, {*_ENTRY_KEYS, *allow})
    if len(entries) > MAX_CLASSES:
        raise DataError(f"{source} lists {len(entries)} classes; masks are 8-bit PNGs, so at most {MAX_CLASSES}.")
    names = [_name(e, i, source) for i, e in enumerate(entries)]
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise DataError(f"{source}: classes {seen[name]} and {i} are both named {name!r}. Give every class its "
                            "own name.")
        seen[name] = i
    colors = tuple(_color(e, names[i], source) for i, e in enumerate(entries))
    ignore = data.get("ignore_index", IGNORE_INDEX)
    if isinstance(ignore, bool) or not isinstance(ignore, int) or not 0 <= ignore <= 255 or ignore < len(names):
        raise DataError(
            f"{source}: ignore_index must be a whole number in {len(names)}..255 (class indices are 0.."
            f"{len(names) - 1}, so it cannot be one of them), not {ignore!r}. 255 is usual."
        )
    return ClassSet(tuple(names), colors, ignore, source), entries


def _ordered(raw: list[Any], source: str, keys: set[str]) -> list[Mapping[str, Any]]:
    """The entries in index order: as listed, or sorted by their ``index`` when they name one."""
    for i, entry in enumerate(raw):
        if not isinstance(entry, Mapping):
            raise DataError(f"{source}: class {i} is {entry!r}, not a mapping such as "
                            '{"name": "road", "color": [128, 64, 128]}.')
        extra = sorted(set(entry) - keys)
        if extra:
            raise DataError(f"{source}: class {i} has unknown key(s) {', '.join(map(repr, extra))}; a class has "
                            f"{', '.join(sorted(keys))}.")
    with_index = [e for e in raw if "index" in e]
    if not with_index:
        return list(raw)
    if len(with_index) != len(raw):
        raise DataError(f"{source}: some classes name an index and some do not. Name it for all of them or none "
                        "(without, the index is the position in the list).")
    by_index: dict[int, Mapping[str, Any]] = {}
    for entry in raw:
        index = entry["index"]
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(raw):
            raise DataError(f"{source}: class {entry.get('name')!r} has index {index!r}; indices run from 0 to "
                            f"{len(raw) - 1}, one per class.")
        if index in by_index:
            raise DataError(f"{source}: classes {by_index[index].get('name')!r} and {entry.get('name')!r} both have "
                            f"index {index}. Every index names one class.")
        by_index[index] = entry
    return [by_index[i] for i in range(len(raw))]


def _name(entry: Mapping[str, Any], i: int, source: str) -> str:
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise DataError(f"{source}: class {i} needs a \"name\" (a non-empty string), not {name!r}.")
    return name.strip()


def _color(entry: Mapping[str, Any], name: str, source: str) -> RGB:
    color = entry.get("color")
    ok = isinstance(color, list | tuple) and len(color) == 3 and all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in color)
    if not ok:
        raise DataError(f"{source}: the color of class {name!r} is {color!r}; write three whole numbers 0..255, "
                        "e.g. [128, 64, 128].")
    return (int(color[0]), int(color[1]), int(color[2]))


def check_model_classes(model_names: Sequence[str], model_source: str, classes: ClassSet) -> None:
    """DataError when a model's classes and a data set's differ (count or names), naming both."""
    if tuple(model_names) == classes.names:
        return

    def shown(names: Sequence[str]) -> str:
        return ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
    raise DataError(
        f"The model {model_source} predicts {len(model_names)} classes ({shown(model_names)}) but the data set's "
        f"classes from {classes.source or 'its classes file'} are {classes.num_classes} ({shown(classes.names)}). "
        "Use a model trained on these classes, or the classes file it was trained with."
    )


def lookup_table(classes: ClassSet) -> np.ndarray:
    """256 entries: mask value -> class index (0..N-1), 255 for the ignore index, -1 for any other value."""
    table = np.full(256, _BAD, dtype=np.int16)
    table[: classes.num_classes] = np.arange(classes.num_classes)
    table[classes.ignore_index] = IGNORE_INDEX
    return table


_BAD = -1


def bad_values(mask: np.ndarray, classes: ClassSet) -> list[int]:
    """The values of ``mask`` that are neither a class index nor the ignore index (sorted)."""
    present = np.flatnonzero(np.bincount(mask.ravel(), minlength=256))
    return [int(v) for v in present if lookup_table(classes)[v] == _BAD]
