"""Focus inference (``--focus BUDGET``): the whole image at a reduced scale, then full resolution only on the
hardest tiles.

1. The coarse pass runs the image at ``scale`` (0.5 by default) and upsamples its logits to the full size.
2. The image is cut into ``tile`` x ``tile`` pixel tiles (the last row and column may be smaller); each tile is
   ranked by how hard the coarse pass found it: the selector's importance, the coarse prediction's uncertainty
   (one minus the gap between its two highest probabilities) or the mean of the two ranks.
3. The hardest tiles, up to ``budget`` of the image's pixels, run again at full resolution inside a window
   ``halo`` pixels larger on every side (shifted inwards at the borders, so every window has one size and
   they batch), and the tile's part of the window's logits replaces the coarse logits there.

What depends on the whole image comes from the coarse pass, so that a tile does not see a different world
than its image: a FoR-Net tile takes the image's global-context input (``GAP(F)``) and the Top-K thresholds
of the image's masks (``FocusContext``). Models without a selector (torchvision peers, exported files) and
sliding-window inference run tiles as images of their own. docs/FOCUS.md has the measured trade-off.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

FOCUS_MERGES: tuple[str, ...] = ("paste", "confident")
Box = tuple[int, int, int, int]  # y1, y2, x1, x2 (end exclusive)

RANKINGS: tuple[str, ...] = ("auto", "importance", "uncertainty", "both")
# What "auto" ranks by for a FoR-Net model (one with a selector); models without one use "uncertainty".
# Chosen on held-out generated frames (docs/FOCUS.md, "Which ranking").
AUTO_RANKING = "importance"


@dataclass(frozen=True)
class FocusResult:
    """Logits at full size (``B x C x H x W``), the tiles that ran at full resolution per image, and all tiles'
    scores per image (in the order of :func:`tile_grid`)."""

    logits: torch.Tensor
    refined: list[list[Box]]
    scores: list[torch.Tensor]
    ranking: str


def tile_grid(height: int, width: int, tile: int) -> list[Box]:
    """Tiles of ``tile`` pixels covering the image row by row; the last row and column hold what is left."""
    return [(y, min(y + tile, height), x, min(x + tile, width))
            for y in range(0, height, tile) for x in range(0, width, tile)]


def uncertainty(logits: torch.Tensor) -> torch.Tensor:
    """``B x H x W`` in [0, 1]: one minus the gap between the two highest class probabilities."""
    top2 = logits.float().softmax(dim=1).topk(2, dim=1).values
    return 1.0 - (top2[:, 0] - top2[:, 1])


def tile_scores(hardness: torch.Tensor, tiles: list[Box], size: tuple[int, int]) -> torch.Tensor:
    """The mean of a ``h x w`` hardness map (at any resolution: the coarse pass's, the feature grid) over every
    tile of an image of ``size`` pixels: each tile's box scaled to the map, at least one cell."""
    h, w = size
    mh, mw = hardness.shape[-2:]
    values = hardness.float()
    out = []
    for y1, y2, x1, x2 in tiles:
        r1, c1 = min(y1 * mh // h, mh - 1), min(x1 * mw // w, mw - 1)
        r2, c2 = max(r1 + 1, -(-y2 * mh // h)), max(c1 + 1, -(-x2 * mw // w))
        out.append(values[r1:r2, c1:c2].mean())
    return torch.stack(out)


def rank_average(*scores: torch.Tensor) -> torch.Tensor:
    """The mean of each score's rank (0 = lowest), so that scores on different scales count alike."""
    ranks = [torch.argsort(torch.argsort(s, stable=True), stable=True).float() for s in scores]
    return torch.stack(ranks).mean(dim=0)


def select_tiles(scores: torch.Tensor, tiles: list[Box], budget: float, area: int) -> list[int]:
    """Indices of the highest-scoring tiles whose pixels add up to at most ``budget * area`` (in the order they
    were chosen; equal scores go to the earlier tile). A tile that does not fit is passed over for smaller ones."""
    allowed = budget * area + 1e-6
    chosen, used = [], 0
    for i in torch.argsort(scores, descending=True, stable=True).tolist():
        y1, y2, x1, x2 = tiles[i]
        size = (y2 - y1) * (x2 - x1)
        if used + size <= allowed:
            chosen.append(i)
            used += size
    return chosen


def window_for(box: Box, halo: int, height: int, width: int, tile: int) -> Box:
    """The fixed-size window (``tile + 2 * halo`` pixels a side, at most the image) around ``box``, shifted
    inwards at the image's borders."""
    wh, ww = min(tile + 2 * halo, height), min(tile + 2 * halo, width)
    y1 = min(max(box[0] - halo, 0), height - wh)
    x1 = min(max(box[2] - halo, 0), width - ww)
    return y1, y1 + wh, x1, x1 + ww


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return x if tuple(x.shape[-2:]) == tuple(size) else F.interpolate(x, size=size, mode="bilinear", align_corners=False)
