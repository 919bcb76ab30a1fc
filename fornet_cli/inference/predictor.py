"""Inference modes shared by ``fornet eval`` and ``fornet predict``: whole image, sliding window, test-time
augmentation (multi-scale + flip) and AMP on CUDA.

Images come in normalised (``B x 3 x H x W`` float); class scores go out at the input size. One view (no
TTA) gives logits; several views give the mean of their softmax probabilities, as MMSegmentation's TTA
does. Works with any model whose forward returns logits: a tensor, a dict with ``"out"`` (torchvision
segmentation models), a FoR-Net ``FornetOutput`` or a tuple whose first item is the logits.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..model.fornet import SELECTOR_CUES
from ..model.outputs import FocusContext, mask_thresholds
from .engines import class_argmax
from .focus import (
    AUTO_RANKING,
    FOCUS_MERGES,
    RANKINGS,
    FocusResult,
    rank_average,
    resize,
    select_tiles,
    tile_grid,
    tile_scores,
    uncertainty,
    window_for,
)
from .runtime import RUNTIMES, Notify, Runtime, RuntimeInfo

# Focus tiles per forward pass at least (the windows are small: a batch amortises the per-call overhead).
FOCUS_BATCH = 8
# MMSegmentation's multi-scale test ratios for Cityscapes.
MS_SCALES: tuple[float, ...] = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)


@dataclass(frozen=True)
class InferenceConfig:
    """How to run a model over full images.

    mode: "whole" runs the image at once; "slide" runs ``crop_size`` windows every ``stride`` pixels and
        averages overlapping logits (images smaller than the crop are padded, and the padding cut off).
    scales, flip: test-time augmentation; probabilities of all views are averaged.
    amp: autocast to ``amp_dtype`` on CUDA (ignored on CPU, where it would be slower and less exact).
    batch_size: images per forward pass in whole mode, windows per forward pass in slide mode.
    focus: focus inference (:mod:`fornet_cli.inference.focus`): the share of the image (0-1) that runs again at
        full resolution after a pass at ``focus_scale``; None runs the image at full resolution only.
        ``focus_tile`` and ``focus_halo`` are the tile's side and the context around it in pixels;
        ``focus_rank`` how tiles are ranked (``auto``, ``importance``, ``uncertainty``, ``both``).
    selector_cue: set a FoR-Net model's run-time ``selector_cue`` when the predictor is made (it stays set on
        the model, as Top-K ratios set on it do; None leaves the model's cue as it is), e.g. ``error_rule``
        lets the first pass's expected errors choose the cells its branches refine.
    runtime: ``torch`` (plain eager PyTorch), ``auto`` (the fastest path for the device, checked against
        eager on the first input), ``onnxruntime`` or ``compile``; see :mod:`fornet_cli.inference.runtime`.
        The library default is ``torch``; the commands default to ``auto``.
    """

    mode: Literal["whole", "slide"] = "whole"
    crop_size: tuple[int, int] = (1024, 1024)
    stride: tuple[int, int] = (768, 768)
    scales: tuple[float, ...] = (1.0,)
    flip: bool = False
    amp: bool = True
    amp_dtype: Literal["float16", "bfloat16"] = "float16"
    batch_size: int = 1
    runtime: str = "torch"
    focus: float | None = None
    focus_scale: float = 0.5
    focus_tile: int = 256
    focus_halo: int = 32
    focus_rank: str = "auto"
    focus_merge: str = "paste"
    selector_cue: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("whole", "slide"):
            raise ConfigError(f"Unknown inference mode {self.mode!r}; use 'whole' or 'slide'.")
        for name in ("crop_size", "stride"):
            value = getattr(self, name)
            if len(value) != 2 or any(int(v) != v or v < 1 for v in value):
                raise ConfigError(f"{name} must be two positive integers (height, width); got {value}.")
        if self.mode == "slide" and any(s > c for s, c in zip(self.stride, self.crop_size)):
            # windows further apart than their size leave pixels that no window sees (their scores would be 0/0)
            raise ConfigError(
                f"The sliding-window stride {self.stride} is larger than the crop {self.crop_size}: pixels between "
                "windows would get no prediction. Use a stride no larger than the crop (e.g. 3/4 of it)."
            )
        if not self.scales or any(not (s > 0) for s in self.scales):
            raise ConfigError(f"TTA scales must be positive numbers; got {self.scales}.")
        if self.amp_dtype not in ("float16", "bfloat16"):
            raise ConfigError(f"amp_dtype must be 'float16' or 'bfloat16'; got {self.amp_dtype!r}.")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1; got {self.batch_size}.")
        if self.runtime not in RUNTIMES:
            raise ConfigError(f"Unknown runtime {self.runtime!r}; choose from {', '.join(RUNTIMES)}.")
        if self.focus is not None:
            if not 0.0 <= self.focus <= 1.0:
                raise ConfigError(f"--focus is the share of the image run at full resolution, from 0 to 1; got {self.focus}.")
            if not 0.0 < self.focus_scale <= 1.0:
                raise ConfigError(f"The focus scale must lie in (0, 1]; got {self.focus_scale}.")
            if self.focus_tile < 16 or self.focus_halo < 0:
                raise ConfigError(f"Focus tiles need at least 16 pixels and a halo of at least 0; got tile "
                                  f"{self.focus_tile}, halo {self.focus_halo}.")
            if self.focus_rank not in RANKINGS:
                raise ConfigError(f"Unknown focus ranking {self.focus_rank!r}; choose from {', '.join(RANKINGS)}.")
            if self.focus_merge not in FOCUS_MERGES:
                raise ConfigError(f"Unknown focus merge {self.focus_merge!r}; choose from {', '.join(FOCUS_MERGES)}.")
            if self.num_views > 1:
                raise ConfigError("--focus runs one view; it cannot be combined with --tta (multi-scale or flip).")
        if self.selector_cue is not None and self.selector_cue not in SELECTOR_CUES:
            raise ConfigError(f"Unknown selector cue {self.selector_cue!r}; choose from {', '.join(SELECTOR_CUES)}.")

    @property
    def num_views(self) -> int:
        return len(self.scales) * (2 if self.flip else 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def set_selector_cue(model: nn.Module, cue: str) -> None:
    """Run ``model`` with ``cue`` ranking its cells (:class:`~fornet_cli.model.FornetModel`'s run-time
    ``selector_cue``); a clear error for a model without one."""
    if not hasattr(model, "selector_cue"):
        raise ConfigError(
            f"--selector-cue chooses how a FoR-Net model picks the cells its branches refine; "
            f"{type(model).__name__} has no selector. Leave the option out for this model."
        )
    model.selector_cue = cue  # the model's setter refuses unknown cues and decoders that cannot run them


def slide_windows(
    height: int, width: int, crop: tuple[int, int], stride: tuple[int, int]
) -> list[tuple[int, int, int, int]]:
    """Windows ``(y1, y2, x1, x2)`` as in MMSegmentation: a regular grid, the last one flush with the border."""
    ch, cw = crop
    sh, sw = stride
    rows = max(height - ch + sh - 1, 0) // sh + 1
    cols = max(width - cw + sw - 1, 0) // sw + 1
    windows = []
    for r in range(rows):
        for c in range(cols):
            y2, x2 = min(r * sh + ch, height), min(c * sw + cw, width)
            y1, x1 = max(y2 - ch, 0), max(x2 - cw, 0)
            windows.append((y1, y2, x1, x2))
    return windows


class Predictor:
    """Runs a segmentation model under an :class:`InferenceConfig`. Puts the model in eval mode.

    >>> predictor = Predictor(model, InferenceConfig(mode="slide", flip=True))
    >>> labels = predictor.predict(images)      # B x H x W train ids

    ``notify`` hears one line naming the runtime that runs (and any fallback), once it is known.
    """

    def __init__(self, model: nn.Module, config: InferenceConfig | None = None, notify: Notify | None = None) -> None:
        self.model = model.eval()
        self.config = config or InferenceConfig()
        if self.config.selector_cue is not None:
            set_selector_cue(self.model, self.config.selector_cue)
        amp = getattr(torch, self.config.amp_dtype) if self.config.amp else None
        self.runtime = Runtime(self.model, self.config.runtime, amp_dtype=amp, notify=notify)

    @property
    def device(self) -> torch.device:
        param = next(self.model.parameters(), None)
        return param.device if param is not None else torch.device("cpu")

    @property
    def runtime_info(self) -> RuntimeInfo:
        return self.runtime.info

    def prepare(self) -> Predictor:
        """Build the runtime now (export, compile) rather than on the first image."""
        self.runtime.prepare()
        return self

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (float32) at the size of ``x``."""
        logits = self.runtime.logits(x)
        if logits.shape[-2:] != x.shape[-2:]:  # models that predict at a stride
            logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return logits

    def _whole(self, x: torch.Tensor) -> torch.Tensor:
        n = self.config.batch_size
        return torch.cat([self._forward(x[i : i + n]) for i in range(0, x.shape[0], n)])

    def _slide(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        ch, cw = self.config.crop_size
        # Pad (bottom/right, zeros = the mean colour after normalisation) up to the crop size so every
        # window has the same shape: windows batch together and fixed-size exported models work.
        ph, pw = max(ch - h, 0), max(cw - w, 0)
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph))
        hp, wp = x.shape[-2:]
        windows = slide_windows(hp, wp, self.config.crop_size, self.config.stride)
        total: torch.Tensor | None = None
        count = torch.zeros((1, 1, hp, wp), device=x.device)
        jobs = [(i, win) for i in range(b) for win in windows]
        for chunk in _chunks(jobs, self.config.batch_size):
            crops = torch.stack([x[i, :, y1:y2, x1:x2] for i, (y1, y2, x1, x2) in chunk])
            logits = self._forward(crops)
            if total is None:
                total = torch.zeros((b, logits.shape[1], hp, wp), device=x.device)
            for (i, (y1, y2, x1, x2)), out in zip(chunk, logits):
                total[i, :, y1:y2, x1:x2] += out
        for y1, y2, x1, x2 in windows:
            count[..., y1:y2, x1:x2] += 1
        assert total is not None
        return (total / count)[..., :h, :w]

    def _view(self, x: torch.Tensor) -> torch.Tensor:
        return self._whole(x) if self.config.mode == "whole" else self._slide(x)

    def _views(self, images: torch.Tensor) -> Iterator[torch.Tensor]:
        """Logits of every TTA view, resized back to the input size."""
        h, w = images.shape[-2:]
        for scale in self.config.scales:
            if scale == 1.0:
                x = images
            else:
                size = (max(1, round(h * scale)), max(1, round(w * scale)))
                x = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
            for flip in (False, True) if self.config.flip else (False,):
                out = self._view(x.flip(-1) if flip else x)
                if flip:
                    out = out.flip(-1)
                if out.shape[-2:] != (h, w):
                    out = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)
                yield out

    @torch.no_grad()
    def scores(self, images: torch.Tensor) -> torch.Tensor:
        """``B x C x H x W`` float32: logits for one view, the mean softmax probability for several."""
        images = self._check(images)
        if self.config.focus is not None:
            return self.focus(images).logits
        if self.config.num_views == 1:
            return next(self._views(images))
        return self._mean_probabilities(images)

    @torch.no_grad()
    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """``B x C x H x W`` softmax probabilities (averaged over the TTA views)."""
        images = self._check(images)
        if self.config.focus is not None:
            return self.focus(images).logits.softmax(dim=1)
        if self.config.num_views == 1:
            return next(self._views(images)).softmax(dim=1)
        return self._mean_probabilities(images)

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """``B x H x W`` int64 class indices (train ids)."""
        return class_argmax(self.scores(images))

    @torch.no_grad()
    def labels(self, images: torch.Tensor) -> torch.Tensor:
        """``B x H x W`` class indices as :meth:`predict`, uint8 when there are at most 256 classes."""
        return class_argmax(self.scores(images), compact=True)

    @torch.no_grad()
    def fornet_outputs(self, images: torch.Tensor) -> Any:
        """FoR-Net's ``FornetOutput`` (logits, importance logit, Top-K masks) in whole mode, one view."""
        if not hasattr(self.model, "forward_all"):
            raise ConfigError(
                f"{type(self.model).__name__} is not a FoR-Net model: it has no importance or Top-K masks."
            )
        return self.runtime.outputs(self._check(images))

    @property
    def focus_ranking(self) -> str:
        """What ranks focus tiles for this model: ``auto`` resolved (the selector needs whole-image FoR-Net
        outputs; other models and sliding windows use the coarse prediction's uncertainty)."""
        if not self._focus_context:
            return "uncertainty"
        return AUTO_RANKING if self.config.focus_rank == "auto" else self.config.focus_rank

    @property
    def _focus_context(self) -> bool:
        return hasattr(self.model, "forward_all") and self.config.mode == "whole"

    @torch.no_grad()
    def focus(self, images: torch.Tensor, budget: float | None = None) -> FocusResult:
        """Focus inference (:mod:`fornet_cli.inference.focus`) at ``budget`` (default: the config's ``focus``)."""
        images = self._check(images)
        cfg = self.config
        budget = cfg.focus if budget is None else budget
        if budget is None:
            raise ConfigError("Focus inference needs a budget (--focus 0.2: a fifth of the image at full resolution).")
        b, _, h, w = images.shape
        ranking = self.focus_ranking
        tiles = tile_grid(h, w, cfg.focus_tile)
        if budget >= 1.0:  # every tile: full-resolution inference itself, without a coarse pass to rank them
            return FocusResult(self._view(images), [list(tiles) for _ in range(b)],
                               [torch.ones(len(tiles)) for _ in range(b)], ranking)
        small = resize(images, (max(1, round(h * cfg.focus_scale)), max(1, round(w * cfg.focus_scale))))
        context: FocusContext | None = None
        if self._focus_context:
            outs = [self.runtime.outputs(small[i : i + cfg.batch_size]) for i in range(0, b, cfg.batch_size)]
            coarse = torch.cat([resize(o.logits, small.shape[-2:]) for o in outs])
            importance = torch.cat([o.importance for o in outs])
            masks = torch.cat([o.masks for o in outs])
            context = FocusContext(torch.cat([o.pooled for o in outs]), mask_thresholds(importance, masks))
        else:
            coarse, importance = self._view(small), None
        logits = resize(coarse, (h, w))
        scores, refined, jobs = [], [], []
        for i in range(b):
            score = self._tile_scores(ranking, coarse[i : i + 1], None if importance is None else importance[i : i + 1], tiles, (h, w))
            boxes = [tiles[t] for t in select_tiles(score, tiles, budget, h * w)] if budget > 0 else []
            windows = [window_for(box, cfg.focus_halo, h, w, cfg.focus_tile) for box in boxes]
            scores.append(score)
            refined.append(boxes)
            if sum((y2 - y1) * (x2 - x1) for y1, y2, x1, x2 in windows) >= h * w:
                # The windows would cost more than the whole image: run it whole, and take the tiles from it.
                full = self._view(images[i : i + 1])[0]
                for box in boxes:
                    self._paste(logits[i], full, box, (0, 0))
            else:
                jobs += [(i, box, window) for box, window in zip(boxes, windows)]
        for chunk in _chunks(jobs, max(cfg.batch_size, FOCUS_BATCH)):
            crops = torch.stack([images[i, :, y1:y2, x1:x2] for i, _, (y1, y2, x1, x2) in chunk])
            if context is not None:
                index = torch.tensor([i for i, _, _ in chunk], device=images.device)
                out = self.runtime.tile_logits(crops, FocusContext(context.pooled[index], context.thresholds[index]))
                out = resize(out, crops.shape[-2:])
            else:
                out = self._forward(crops)
            for (i, box, window), tile_out in zip(chunk, out):
                self._paste(logits[i], tile_out, box, (window[0], window[2]))
        return FocusResult(logits, refined, scores, ranking)

    def _paste(self, dst: torch.Tensor, src: torch.Tensor, box: tuple[int, int, int, int], origin: tuple[int, int]) -> None:
        """Put ``src``'s logits (a window whose top-left pixel is ``origin``) into ``dst`` over ``box``: all of
        them (``paste``), or where they are more confident than the coarse pass (``confident``)."""
        y1, y2, x1, x2 = box
        part = src[:, y1 - origin[0] : y2 - origin[0], x1 - origin[1] : x2 - origin[1]]
        if self.config.focus_merge == "paste":
            dst[:, y1:y2, x1:x2] = part
            return
        here = dst[:, y1:y2, x1:x2]
        better = _confidence(part) > _confidence(here)
        dst[:, y1:y2, x1:x2] = torch.where(better[None], part, here)

    @staticmethod
    def _tile_scores(ranking: str, coarse: torch.Tensor, importance: torch.Tensor | None, tiles: list, size: tuple[int, int]) -> torch.Tensor:
        def uncertain() -> torch.Tensor:
            return tile_scores(uncertainty(coarse)[0], tiles, size)

        def selected() -> torch.Tensor:
            assert importance is not None
            return tile_scores(torch.sigmoid(importance[0, 0].float()), tiles, size)

        if ranking == "importance":
            return selected()
        if ranking == "both":
            return rank_average(selected(), uncertain())
        return uncertain()

    def _mean_probabilities(self, images: torch.Tensor) -> torch.Tensor:
        total = None
        for out in self._views(images):
            probs = out.softmax(dim=1)
            total = probs if total is None else total.add_(probs)
        assert total is not None
        return total.div_(self.config.num_views)

    def _check(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim == 3:
            images = images[None]
        if images.ndim != 4 or images.shape[1] != 3:
            raise ConfigError(f"Expected images B x 3 x H x W, got shape {tuple(images.shape)}.")
        if not images.is_floating_point():
            raise ConfigError(f"Expected normalised float images, got dtype {images.dtype}.")
        return images.to(self.device)


def _confidence(logits: torch.Tensor) -> torch.Tensor:
    """The highest class probability per pixel of ``C x H x W`` logits."""
    return logits.float().softmax(dim=0).amax(dim=0)


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
