"""The user's own settings, in ``config.toml`` in their config folder.

The folder is ``$FORNET_CONFIG_DIR`` when set, else ``$XDG_CONFIG_HOME/fornet``, else ``~/.config/fornet``
(``%APPDATA%\\fornet`` on Windows). Today it holds one setting, the default weights::

    [weights]
    default = "/home/me/runs/demo/train"

Writes are atomic and keep every other key of the file; a file fornet cannot read is reported, never replaced.
"""

from __future__ import annotations

import json
import os
import sys
import tomllib
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .fsutil import atomic_write_text

CONFIG_DIR_ENV = "FORNET_CONFIG_DIR"
CONFIG_NAME = "config.toml"


def config_dir() -> Path:
    """Where the user's settings live (see the module doc)."""
    if os.environ.get(CONFIG_DIR_ENV):
        return Path(os.environ[CONFIG_DIR_ENV]).expanduser()
    if sys.platform == "win32" and os.environ.get("APPDATA"):
        return Path(os.environ["APPDATA"]) / "fornet"
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "fornet"


def config_path() -> Path:
    return config_dir() / CONFIG_NAME


def read_settings(path: Path | None = None) -> dict[str, Any]:
    """The settings file as a dict ({} when there is none); ConfigError for a file that is not TOML."""
    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read your fornet settings {path} ({exc}). Fix or delete the file.") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Your fornet settings {path} are not valid TOML ({exc}). Fix or delete the file.") from None


def get_setting(section: str, key: str) -> Any:
    value = read_settings().get(section, {})
    return value.get(key) if isinstance(value, dict) else None


def set_setting(section: str, key: str, value: Any | None) -> Path:
    """Set (or, with None, remove) ``[section] key`` and write the file atomically; returns its path."""
    path = config_path()
    data = read_settings(path)
    table = data.setdefault(section, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {section} is not a table; fix or delete the file.")
    if value is None:
        table.pop(key, None)
        if not table:
            data.pop(section)
    else:
        table[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, to_toml(data))
    return path


def to_toml(data: dict[str, Any]) -> str:
    """A small TOML writer for what settings hold: strings, numbers, booleans, lists of them, and tables."""
    lines = ["# fornet settings (written by fornet; see `fornet weights default --help`)"]
    plain = {k: v for k, v in data.items() if not isinstance(v, dict)}
    lines += [f"{_key(k)} = {_value(v)}" for k, v in plain.items()]
    for name, table in data.items():
        if isinstance(table, dict):
            lines += ["", f"[{_key(name)}]"] + [f"{_key(k)} = {_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string: JSON's escapes are TOML's
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise ConfigError(f"Cannot write the setting value {value!r} to TOML.")
