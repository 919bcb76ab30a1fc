"""Parsers for option values shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..inference.predictor import MS_SCALES, InferenceConfig


def parse_size(value: str) -> tuple[int, int]:
    """``HxW`` (or a single number for a square) -> ``(height, width)``."""
    parts = value.lower().replace(" ", "").split("x")
    try:
        if len(parts) == 1:
            h = w = int(parts[0])
        elif len(parts) == 2:
            h, w = int(parts[0]), int(parts[1])
        else:
            raise ValueError
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a size; write HEIGHTxWIDTH, e.g. 1024x2048.") from None
    if h < 1 or w < 1:
        raise typer.BadParameter(f"{value!r}: height and width must be positive.")
    return h, w


# Inference options shared by eval and predict.
ModeOpt = Annotated[str, typer.Option(help="whole (the full image at once) or slide (windows of --crop every --stride).")]
CropOpt = Annotated[str, typer.Option(help="Sliding-window size HxW.")]
StrideOpt = Annotated[str, typer.Option(help="Sliding-window step HxW.")]
TtaOpt = Annotated[bool, typer.Option("--tta", help=f"Multi-scale {MS_SCALES} + flip test-time augmentation.")]
DeviceOpt = Annotated[str, typer.Option(help="auto, cpu or cuda.")]
AmpOpt = Annotated[bool, typer.Option("--amp/--no-amp", help="Half precision on CUDA.")]
RegistryOpt = Annotated[Path | None, typer.Option(help="An extra weights.toml.")]
TrustPickleOpt = Annotated[bool, typer.Option("--trust-pickle", help="Allow a pickled .pt/.pth file (read with weights_only=True).")]


def inference_config(mode: str, crop: str, stride: str, tta: bool, amp: bool) -> InferenceConfig:
    return InferenceConfig(
        mode=mode,  # type: ignore[arg-type]
        crop_size=parse_size(crop),
        stride=parse_size(stride),
        scales=MS_SCALES if tta else (1.0,),
        flip=tta,
        amp=amp,
    )
