"""The weights a command uses when given no ``--weights``: ``$FORNET_WEIGHTS_DEFAULT``, else the user's setting
(``fornet weights default REF``, in fornet_cli/settings.py), else the registry entry marked ``default = true``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .. import hub
from ..errors import WeightsError
from ..settings import config_path, get_setting, set_setting

ENV_VAR = "FORNET_WEIGHTS_DEFAULT"
SECTION, KEY = "weights", "default"

NO_WEIGHTS = (
    "No weights given and no default set. Pass --weights NAME|PATH|hf://org/repo, or set a default with "
    "`fornet weights default REF`. To get weights: `fornet demo` (trains one in minutes and makes it the default), "
    "`fornet train ...`, or a published model hf://org/repo; fornet ships no FoR-Net weights yet."
)


@dataclass(frozen=True)
class WeightsChoice:
    """A ``--weights`` reference and where it came from."""

    ref: str
    origin: str  # "--weights", "$FORNET_WEIGHTS_DEFAULT", "settings <path>", "registry <file>"

    def to_dict(self) -> dict[str, str]:
        return {"ref": self.ref, "from": self.origin}


def find_default(registry: str | os.PathLike | None = None) -> WeightsChoice | None:
    """The default weights and their origin, or None when nothing sets one."""
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return WeightsChoice(env, f"${ENV_VAR}")
    setting = get_setting(SECTION, KEY)
    if isinstance(setting, str) and setting:
        return WeightsChoice(setting, f"your settings {config_path()}")
    for spec in hub.load_registry(registry).values():
        if spec.default:
            return WeightsChoice(spec.name, f"the registry's default entry ({spec.registry_file})")
    return None


def choose_weights(weights: str | None, registry: str | os.PathLike | None = None) -> WeightsChoice:
    """``--weights`` when given, else the default; WeightsError saying how to get weights when there is none."""
    if weights:
        return WeightsChoice(weights, "--weights")
    found = find_default(registry)
    if found is None:
        raise WeightsError(NO_WEIGHTS)
    return found


def store_default(ref: str, registry: str | os.PathLike | None = None) -> tuple[str, Path]:
    """Save ``ref`` as the user's default (a local path is stored absolute, so it works from any folder; a
    registry name must be in the registry)."""
    stored = ref
    path = Path(ref).expanduser()
    if not ref.startswith("hf://"):
        if path.exists():
            stored = str(path.resolve())
        elif os.sep in ref or "." in Path(ref).name:
            raise WeightsError(f"{ref} does not exist; give an existing checkpoint or run folder, a registry name or "
                               "hf://org/repo.")
        else:
            hub.get_spec(ref, hub.load_registry(registry))  # an unknown name: its error with close matches
    return stored, set_setting(SECTION, KEY, stored)


def clear_default() -> Path:
    return set_setting(SECTION, KEY, None)
