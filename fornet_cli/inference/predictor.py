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
from .engines import class_argmax
from .runtime import RUNTIMES, Notify, Runtime, RuntimeInfo

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

    @property
    def num_views(self) -> int:
        return len(self.scales) * (2 if self.flip else 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
        if self.config.num_views == 1:
            return next(self._views(images))
        return self._mean_probabilities(images)

    @torch.no_grad()
    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """``B x C x H x W`` softmax probabilities (averaged over the TTA views)."""
        images = self._check(images)
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


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
