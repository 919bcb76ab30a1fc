"""fornet: FoR-Net semantic segmentation ("Learning to Focus on Hard Regions for Efficient Semantic
Segmentation", arXiv 2605.02764) as a library and a command-line tool.

The library never imports the CLI stack (typer, rich).
"""

from .errors import FornetError
from .model import FornetConfig, FornetModel, FornetOutput, create_model, list_models, register_model

__version__ = "0.1.0"

__all__ = [
    "FornetConfig",
    "FornetError",
    "FornetModel",
    "FornetOutput",
    "__version__",
    "create_model",
    "list_models",
    "register_model",
]
