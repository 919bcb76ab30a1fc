"""Regions of the selector's grid chosen by other rules than the selector, with the same number of cells:

* ``gap``: the cells where the prediction is least sure, by the mean gap between the two highest logits of
  their pixels (PointRend's uncertainty; zero cost, but only known once the prediction is made);
* ``band cells``: the cells that hold the most pixels of the band around the *predicted* boundaries: the
  boundary-band rule at the selector's resolution (the pixel band itself is not bound to cells, which gives
  it an edge no rule on a coarse grid has);
* ``ceiling``: the cells that hold the most errors (needs the ground truth): no selector on this grid can put
  more errors into a region of that many cells, so it is the bar any selector is measured against.

Cells map to pixels as nearest-neighbour upsampling maps them (how the Top-K masks are evaluated), so every
rule's region covers exactly the pixels of its cells.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..model.fornet import top2_gap


def cell_of_pixel(grid: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """``H x W`` int64: the index (row * w + column) of the grid cell each pixel belongs to."""
    h, w = grid
    index = torch.arange(h * w, dtype=torch.float32).view(1, 1, h, w)
    return F.interpolate(index, size=size, mode="nearest")[0, 0].to(torch.int64)


def cell_sums(values: torch.Tensor, cells: torch.Tensor, n_cells: int) -> torch.Tensor:
    """Sum of a pixel map over each cell (``n_cells`` float64)."""
    return torch.bincount(cells.reshape(-1), weights=values.reshape(-1).double(), minlength=n_cells)


def ranked_regions(scores: torch.Tensor, counts: Sequence[int], cells: torch.Tensor) -> torch.Tensor:
    """``n x H x W`` booleans: for each count K, the pixels of the K highest-scoring cells (ties by cell index)."""
    order = torch.argsort(scores, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.numel())
    return torch.stack([(rank < k)[cells] for k in counts])


def densest_cells(pixels: torch.Tensor, grid: tuple[int, int], counts: Sequence[int]) -> torch.Tensor:
    """The cells holding the most ``pixels`` (``H x W`` bool): with the wrong pixels, the ceiling; with the
    predicted-boundary band, the band rule on the grid."""
    cells = cell_of_pixel(grid, tuple(pixels.shape))
    return ranked_regions(cell_sums(pixels.float(), cells, grid[0] * grid[1]), counts, cells)


def logit_gap(logits: torch.Tensor) -> torch.Tensor:
    """``H x W``: the gap between the two highest of ``C x H x W`` logits (small = unsure)."""
    return top2_gap(logits, dim=0)[0]


def gap_scores(gap: torch.Tensor, cells: torch.Tensor, n: int) -> torch.Tensor:
    """Per cell, minus the mean logit gap of its pixels: the higher, the less sure the prediction."""
    return -cell_sums(gap, cells, n) / torch.bincount(cells.reshape(-1), minlength=n).clamp(min=1)


def gap_regions(gap: torch.Tensor, grid: tuple[int, int], counts: Sequence[int]) -> torch.Tensor:
    """The cells with the smallest mean logit gap (``gap``: ``H x W`` from :func:`logit_gap`)."""
    cells = cell_of_pixel(grid, tuple(gap.shape))
    return ranked_regions(gap_scores(gap, cells, grid[0] * grid[1]), counts, cells)
