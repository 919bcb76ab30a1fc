"""Parsers for option values shared by several commands."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from ..inference.predictor import MS_SCALES, InferenceConfig
from ..inference.runtime import RUNTIMES
from ..weights.defaults import WeightsChoice, choose_weights


def parse_size(value: str, option: str | None = None) -> tuple[int, int]:
    """``HxW`` (or a single number for a square) -> ``(height, width)``; ``option`` names it in errors."""
    parts = value.lower().replace(" ", "").split("x")
    try:
        if len(parts) == 1:
            h = w = int(parts[0])
        elif len(parts) == 2:
            h, w = int(parts[0]), int(parts[1])
        else:
            raise ValueError
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a size; write HEIGHTxWIDTH, e.g. 1024x2048.", param_hint=option) from None
    if h < 1 or w < 1:
        raise typer.BadParameter(f"{value!r}: height and width must be positive.", param_hint=option)
    return h, w


def parse_ratios(value: str | None, option: str = "--topk") -> tuple[float, ...] | None:
    """``0.1,0.2,0.3,0.4`` -> Top-K ratios, one per branch, each in [0, 1] (None stays None).

    A usage error (exit code 2) names the bad value and shows an example.
    """
    if value is None:
        return None
    example = "write one ratio per branch, separated by commas, e.g. 0.1,0.2,0.3,0.4"
    ratios = []
    for part in (v for v in value.replace(" ", "").split(",") if v):
        try:
            ratio = float(part)
        except ValueError:
            raise typer.BadParameter(f"{value!r} is not a list of numbers ({part!r} is not a number); {example}.", param_hint=option) from None
        if not 0.0 <= ratio <= 1.0:  # also NaN
            raise typer.BadParameter(
                f"{part} in {value!r} is not in [0, 1]: a Top-K ratio is the fraction of pixels a branch refines "
                f"(0 = branch off, 1 = dense); {example}.",
                param_hint=option,
            )
        ratios.append(ratio)
    if not ratios:
        raise typer.BadParameter(f"give at least one ratio; {example}.", param_hint=option)
    return tuple(ratios)


# Inference options shared by eval and predict.
ModeOpt = Annotated[str, typer.Option(help="whole (the full image at once) or slide (windows of --crop every --stride).")]
CropOpt = Annotated[str, typer.Option(help="Sliding-window size HxW.")]
StrideOpt = Annotated[str, typer.Option(help="Sliding-window step HxW.")]
TtaOpt = Annotated[bool, typer.Option("--tta", help=f"Multi-scale {MS_SCALES} + flip test-time augmentation.")]
DeviceOpt = Annotated[str, typer.Option(help="auto, cpu or cuda.")]
AmpOpt = Annotated[bool, typer.Option("--amp/--no-amp", help="Half precision on CUDA.")]
RuntimeOpt = Annotated[str, typer.Option(
    "--runtime", help="auto (the fastest for the device: onnxruntime on a CPU, channels_last + autocast on CUDA; "
    "checked against eager PyTorch on the first image), torch (plain eager PyTorch), onnxruntime or compile.")]
BatchOpt = Annotated[int, typer.Option("--batch", min=1, help="Images (slide: windows) per forward pass; "
                                       "consecutive images of one size are batched. 4-8 pay on a GPU.")]
FocusOpt = Annotated[float | None, typer.Option(
    "--focus", min=0.0, max=1.0, metavar="BUDGET",
    help="Focus inference: run the image at --focus-scale, then at full resolution only the hardest tiles, up to "
    "this share of the image (0.2 = a fifth). 0: the reduced-scale pass only; 1: every tile.")]
FocusScaleOpt = Annotated[float, typer.Option("--focus-scale", min=0.05, max=1.0, help="--focus: scale of the first pass.")]
FocusTileOpt = Annotated[int, typer.Option("--focus-tile", min=16, help="--focus: tile side in pixels.")]
FocusHaloOpt = Annotated[int, typer.Option("--focus-halo", min=0, help="--focus: context around a tile in pixels.")]
FocusRankOpt = Annotated[str, typer.Option(
    "--focus-rank", help="--focus: rank tiles by auto, importance (the selector), uncertainty (the first pass's "
    "top-2 probability gap) or both. auto: the measured best (docs/FOCUS.md).")]
SelectorCueOpt = Annotated[str | None, typer.Option(
    "--selector-cue", metavar="CUE",
    help="FoR-Net models with the linear decoder (fornet_mbv3, fornet_r18): what picks the cells the branches "
    "refine. none (the learned selector), error_rule (the cells where a first pass with the branches off "
    "expects the most wrong pixels; the same weights), gap_rule or gap. Default: the model's own.")]
RegistryOpt = Annotated[Path | None, typer.Option(help="An extra weights.toml.")]
TrustPickleOpt = Annotated[bool, typer.Option("--trust-pickle", help="Allow a pickled .pt/.pth file (read with weights_only=True).")]


_INFERENCE_OPTIONS = (  # (name, annotation, default): eval and predict take them alike
    ("mode", ModeOpt, "whole"),
    ("crop", CropOpt, "1024x1024"),
    ("stride", StrideOpt, "768x768"),
    ("tta", TtaOpt, False),
    ("amp", AmpOpt, True),
    ("runtime", RuntimeOpt, "auto"),
    ("batch", BatchOpt, 1),
    ("focus", FocusOpt, None),
    ("focus_scale", FocusScaleOpt, 0.5),
    ("focus_tile", FocusTileOpt, 256),
    ("focus_halo", FocusHaloOpt, 32),
    ("focus_rank", FocusRankOpt, "auto"),
    ("selector_cue", SelectorCueOpt, None),
)
FOCUS_OPTIONS = ("focus", "focus_scale", "focus_tile", "focus_halo", "focus_rank")


def inference_options(command: Callable[..., Any] | None = None, *, only: tuple[str, ...] | None = None) -> Any:
    """Give a command the options ``--mode --crop --stride --tta --amp --runtime --batch --focus...`` (or ``only`` those
    named); it receives them as one ``inference: InferenceConfig`` keyword argument (declared once here, for
    every command that runs a model). ``@inference_options`` or ``@inference_options(only=(...))``."""
    if command is None:
        return lambda fn: inference_options(fn, only=only)
    options = [o for o in _INFERENCE_OPTIONS if only is None or o[0] in only]
    signature = inspect.signature(command, eval_str=True)  # typer reads the wrapper's evaluated signature
    kept = [p for p in signature.parameters.values() if p.name != "inference"]
    added = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d, annotation=a) for n, a, d in options]
    kept = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) if p.kind == inspect.Parameter.POSITIONAL_OR_KEYWORD else p for p in kept]
    defaults = {name: default for name, _, default in _INFERENCE_OPTIONS}

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {**defaults, **{name: kwargs.pop(name) for name, _, _ in options}}
        return command(*args, inference=inference_config(**values), **kwargs)

    params = [*kept, *added]
    wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper


def inference_config(mode: str, crop: str, stride: str, tta: bool, amp: bool, runtime: str = "auto",
                     batch: int = 1, focus: float | None = None, focus_scale: float = 0.5, focus_tile: int = 256,
                     focus_halo: int = 32, focus_rank: str = "auto", selector_cue: str | None = None) -> InferenceConfig:
    if runtime not in RUNTIMES:
        raise typer.BadParameter(f"{runtime!r}: choose from {', '.join(RUNTIMES)}.", param_hint="--runtime")
    return InferenceConfig(
        mode=mode,  # type: ignore[arg-type]
        crop_size=parse_size(crop, "--crop"),
        stride=parse_size(stride, "--stride"),
        scales=MS_SCALES if tta else (1.0,),
        flip=tta,
        amp=amp,
        runtime=runtime,
        batch_size=batch,
        focus=focus,
        focus_scale=focus_scale,
        focus_tile=focus_tile,
        focus_halo=focus_halo,
        focus_rank=focus_rank,
        selector_cue=selector_cue,
    )


WEIGHTS_HELP = ("Registry name, hf://org/repo or hf://org/repo@rev, a checkpoint folder, a run folder or a .safetensors "
                "file. Default: `fornet weights default` (or $FORNET_WEIGHTS_DEFAULT, or the registry's default entry).")
WeightsOpt = Annotated[str | None, typer.Option("--weights", "-w", help=WEIGHTS_HELP)]
DataOpt = Annotated[str, typer.Option("--data", help="cityscapes, synth (the generated set) or folder (your own: "
                                      "ROOT/{split}/images|masks/ + classes.json).")]
ClassesOpt = Annotated[str | None, typer.Option("--classes", help="--data folder: a classes file (JSON/YAML) or "
                                                "'cityscapes' (default: ROOT/classes.json or classes.yaml).")]


def pick_weights(weights: str | None, registry: Path | None) -> WeightsChoice:
    """The weights to load (``--weights`` or the default), said on stderr."""
    from .console import err

    choice = choose_weights(weights, registry)
    if choice.origin != "--weights":
        err.print(f"Weights: {choice.ref} (the default, from {choice.origin})", highlight=False)
    return choice
