"""fornet: FoR-Net semantic segmentation ("Learning to Focus on Hard Regions for Efficient Semantic
Segmentation", arXiv 2605.02764) as a library and a command-line tool.

The library never imports the CLI stack (typer, rich).
"""

from ._version import __version__
from .errors import FornetError
from .model import FornetConfig, FornetModel, FornetOutput, create_model, list_models, register_model


def load_weights(ref, **kwargs):  # type: ignore[no-untyped-def]
    """Load a FoR-Net model from a ``--weights`` reference (registry name, ``hf://org/repo[@rev]``, checkpoint
    or run folder, ``.safetensors`` file); returns ``LoadedModel(model, meta, source)``. See
    :func:`fornet_cli.weights.resolve.load_weights` for the options."""
    from .weights.resolve import load_weights as _load_weights  # keeps `import fornet_cli` light

    return _load_weights(ref, **kwargs)

__all__ = [
    "FornetConfig",
    "FornetError",
    "FornetModel",
    "FornetOutput",
    "__version__",
    "create_model",
    "list_models",
    "load_weights",
    "register_model",
]
