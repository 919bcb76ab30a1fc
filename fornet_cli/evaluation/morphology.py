"""Boundary edges and bands of label maps (the geometry of the hard-region scores, docs/METRICS.md).

* ``edges``: pixels whose 3 x 3 neighbourhood holds two *valid* pixels with different labels.
* ``boundary_band(L, w)``: pixels within Chebyshev distance ``w - 1`` of an edge pixel.
* ``distance_levels``: for nested widths, how many bands a pixel lies outside of.
* ``edge_distance``: the Chebyshev distance to the nearest edge pixel, i.e. every band at once.

On CPU, for one ``H x W`` map (what ``fornet eval`` and ``show-hardness`` pass), OpenCV does what it does
best: the 3 x 3 max / min filters of ``edges`` are ``cv2.dilate`` / ``cv2.erode`` and ``edge_distance`` is
``cv2.distanceTransform`` (DIST_C). Dilating a mask by a radius stays hand-written (``PackedMask``): the mask
is packed 64 pixels to a word, so one element-wise op moves 64 pixels (rows: OR of whole words; columns: bit
shifts with carries) and a radius costs O(log r) of them. ``cv2.dilate`` costs O(r) per pixel plus, with
OpenCV's default thread pool, a dispatch per call: on 1024 x 2048 edge maps it ran at 0.3-0.9x the speed of
``PackedMask`` at r = 2 (1.4-2.3x with OpenCV limited to one thread, a process-wide setting), 0.3-0.8x at
r = 11, 0.3-0.6x at r = 23 and 0.1-0.2x at r = 100; in ``fornet eval``'s counting the two tie (next to
OpenCV's edges, ``PackedMask`` bands ran at 1.05-1.30x the speed of the all-hand-written counting, ``cv2.dilate``
bands at 1.08-1.37x; 2-core AMD EPYC, benchmarks/morphology_speed.py, docs/BENCHMARKS.md). scipy.ndimage's filters and distance transforms measured 0.01-0.2x.

Other devices (CUDA) and batches take element-wise max / min of shifted views with log-doubling (a sparse
table), about 20x faster than ``max_pool2d`` on CPU: OpenCV and scipy work on CPU arrays only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np
import torch

from ..errors import ConfigError

_CUMULATIVE = {torch.maximum: torch.cummax, torch.minimum: torch.cummin}


def _reduce_1d(x: torch.Tensor, radius: int, dim: int, op: Callable) -> torch.Tensor:
    """``op`` (max or min) over the window [i - radius, i + radius] along ``dim``, clipped at the borders.

    Sparse table: ``table[j][i]`` = op over ``x[i : i + 2**j]``, built by doubling, so a window costs two
    look-ups and the whole filter log2(2r + 1) + 1 element-wise ops instead of 2r + 1.
    """
    n = x.shape[dim]
    if radius <= 0 or n == 1:
        return x
    length = 2 * radius + 1
    table = [x]
    while 2 ** len(table) <= min(length, n):
        k = 2 ** (len(table) - 1)
        prev = table[-1]
        m = prev.shape[dim] - k
        table.append(op(prev.narrow(dim, 0, m), prev.narrow(dim, k, m)))
    out = torch.empty_like(x)
    interior = n - 2 * radius
    if interior <= 0:  # a tiny image: every window is clipped, compute them one by one
        for i in range(n):
            start, stop = max(0, i - radius), min(n, i + radius + 1)
            j = (stop - start).bit_length() - 1
            out.narrow(dim, i, 1).copy_(op(table[j].narrow(dim, start, 1), table[j].narrow(dim, stop - 2**j, 1)))
        return out
    j = length.bit_length() - 1
    top = table[j]
    op(top.narrow(dim, 0, interior), top.narrow(dim, length - 2**j, interior), out=out.narrow(dim, radius, interior))
    # Border windows are clipped: running max / min over the first and last 2r pixels gives them all.
    cum = _CUMULATIVE[op]
    head = cum(x.narrow(dim, 0, 2 * radius), dim).values
    out.narrow(dim, 0, radius).copy_(head.narrow(dim, radius, radius))
    tail = cum(x.narrow(dim, n - 2 * radius, 2 * radius).flip(dim), dim).values.flip(dim)
    out.narrow(dim, n - radius, radius).copy_(tail.narrow(dim, 0, radius))
    return out


def _reduce_2d(x: torch.Tensor, radius: int, op: Callable) -> torch.Tensor:
    return _reduce_1d(_reduce_1d(x, radius, -1, op), radius, -2, op)


# --------------------------------------------------------------------------------------------------------
# Bit-packed dilation (CPU)
# --------------------------------------------------------------------------------------------------------


class PackedMask:
    """A boolean ``H x W`` mask as ``H x ceil(W / 64)`` uint64 words; bit b of word k is pixel 64k + b."""

    def __init__(self, mask: np.ndarray) -> None:
        self.height, self.width = mask.shape
        words = -(-self.width // 64)
        packed = np.packbits(mask, axis=-1, bitorder="little")
        padded = np.zeros((self.height, words * 8), dtype=np.uint8)
        padded[:, : packed.shape[1]] = packed
        self.words = padded.view(np.uint64)
        # bits past the image width must stay 0: they would act as boundaries after a dilation
        tail = self.width - 64 * (words - 1)
        self._last_word = np.uint64((1 << tail) - 1) if tail < 64 else np.uint64(0xFFFFFFFFFFFFFFFF)

    def unpack(self) -> np.ndarray:
        return np.unpackbits(self.words.view(np.uint8), axis=-1, count=self.width, bitorder="little").view(bool)

    def dilate(self, radius: int) -> PackedMask:
        """Square dilation in place (rows, then columns); returns self."""
        if radius > 0:
            self.words = _shift_or(_rows_or(self.words, radius), radius)
            self.words[:, -1] &= self._last_word
        return self


def _rows_or(words: np.ndarray, radius: int) -> np.ndarray:
    """OR over the rows [i - r, i + r] (clipped), by doubling over a zero-padded copy."""
    h = words.shape[0]
    length = 2 * radius + 1
    pad = np.zeros((radius, words.shape[1]), words.dtype)
    f = np.concatenate([pad, words, pad])
    k = 1
    while 2 * k <= length:  # f[i] = OR over padded rows [i, i + 2k)
        f = f[:-k] | f[k:]
        k *= 2
    return f[:h] | f[length - k : length - k + h]


def _shift_down(words: np.ndarray, k: int) -> np.ndarray:
    """Pixel j takes the value of pixel j + k (zeros past the end): a right shift across words."""
    q, b = divmod(k, 64)
    out = np.zeros_like(words)
    if q >= words.shape[1]:
        return out
    src = words[:, q:]
    out[:, : src.shape[1]] = src >> np.uint64(b) if b else src
    if b and src.shape[1] > 1:
        out[:, : src.shape[1] - 1] |= src[:, 1:] << np.uint64(64 - b)
    return out


def _shift_up(words: np.ndarray, k: int) -> np.ndarray:
    """Pixel j takes the value of pixel j - k (zeros before the start): a left shift across words."""
    q, b = divmod(k, 64)
    out = np.zeros_like(words)
    n = words.shape[1] - q
    if n <= 0:
        return out
    src = words[:, :n]
    out[:, q:] = src << np.uint64(b) if b else src
    if b and n > 1:
        out[:, q + 1 :] |= src[:, :-1] >> np.uint64(64 - b)
    return out


def _one_sided_or(words: np.ndarray, radius: int, shift: Callable[[np.ndarray, int], np.ndarray]) -> np.ndarray:
    """OR over the r + 1 pixels from j towards one side (``shift`` picks the side), by doubling."""
    length = radius + 1
    f, k = words, 1
    while 2 * k <= length:  # f[j] = OR over 2k pixels
        f = f | shift(f, k)
        k *= 2
    if k < length:
        f = f | shift(f, length - k)
    return f


def _shift_or(words: np.ndarray, radius: int) -> np.ndarray:
    """OR over the columns [j - r, j + r], clipped: the two one-sided windows, each clipped by zero fill."""
    return _one_sided_or(words, radius, _shift_down) | _one_sided_or(words, radius, _shift_up)


# --------------------------------------------------------------------------------------------------------
# Public operations
# --------------------------------------------------------------------------------------------------------


def _on_cpu_2d(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and x.ndim == 2


def dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Square (Chebyshev) dilation of a boolean ``H x W`` mask by ``radius`` pixels."""
    if _on_cpu_2d(mask):
        return torch.from_numpy(PackedMask(mask.bool().numpy()).dilate(radius).unpack())
    return dilate_elementwise(mask, radius)


def dilate_elementwise(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """:func:`dilate` with element-wise max on bytes: any device, any leading dimensions."""
    # max on the uint8 view is 3x faster than logical_or on bool tensors (CPU)
    return _reduce_2d(mask.bool().view(torch.uint8), radius, torch.maximum).view(torch.bool)


def _extremes(labels: torch.Tensor, valid: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs of the max and the min filter: invalid pixels get the neutral value (0 / 255), so windows
    only see valid pixels. Labels must be uint8 below 255."""
    if valid is None:
        return labels, labels
    invalid = (~valid).view(torch.uint8)
    # mul / bitwise_or on uint8: torch.where and masked_fill are 15x slower on CPU
    high = labels * valid
    return high, high.bitwise_or(invalid.mul(255))


_SQUARE3 = np.ones((3, 3), np.uint8)


def _edges_cv2(labels: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    """:func:`edges` of a CPU map with OpenCV: ``cv2.dilate`` / ``cv2.erode`` with a 3 x 3 square."""
    high = low = labels
    if valid is not None:  # the neutral values of _extremes, in numpy (0.1-0.2 ms faster than with torch ops)
        high = labels * valid
        low = high | (~valid).view(np.uint8) * np.uint8(255)
    # cv2's default border value is neutral too (the type's min / max): windows are clipped at the border
    return cv2.dilate(high, _SQUARE3) > cv2.erode(low, _SQUARE3)


def edges(labels: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Edge pixels: those whose 3 x 3 neighbourhood holds two valid pixels with different labels.

    A clean border between two classes gives a line two pixels wide (one on each side). Invalid pixels
    (``valid`` False; None = all valid) make no edges; the image border is no edge.
    """
    if labels.dtype != torch.uint8:
        raise TypeError(f"expected a uint8 label map, got {labels.dtype}")
    # With neutral values a window without valid pixels gives max 0 < min 255; ">" keeps those out.
    if _on_cpu_2d(labels):
        array = np.ascontiguousarray(labels.numpy())
        mask = None if valid is None else np.ascontiguousarray(valid.numpy())
        return torch.from_numpy(_edges_cv2(array, mask))
    high, low = _extremes(labels, valid)
    return _reduce_2d(high, 1, torch.maximum) > _reduce_2d(low, 1, torch.minimum)


def edge_distance(edge: torch.Tensor) -> np.ndarray:
    """Chebyshev distance of every pixel of an ``H x W`` CPU edge mask to the nearest edge pixel, as float32
    (FLT_MAX without edges): ``boundary_band(L, w) == (edge_distance(edges(L)) <= w - 1)`` for every w.

    ``cv2.distanceTransform`` with DIST_C: its 3 x 3 chamfer mask is exact for the Chebyshev metric.
    """
    return cv2.distanceTransform(1 - np.ascontiguousarray(edge.numpy()).view(np.uint8), cv2.DIST_C, 3)


def boundary_band(labels: torch.Tensor, width: int, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Pixels within Chebyshev distance ``width - 1`` of an edge pixel (``width`` >= 1).

    Where no invalid pixel intervenes these are exactly the pixels that have a pixel of another label
    within distance ``width``.
    """
    if width < 1:
        raise ConfigError(f"A band width must be at least 1 pixel; got {width}.")
    return dilate(edges(labels, valid), width - 1)


def distance_levels(labels: torch.Tensor, widths: Sequence[int], valid: torch.Tensor | None = None) -> torch.Tensor:
    """uint8 map: for non-decreasing ``widths``, how many of the bands ``boundary_band(labels, w)``
    the pixel lies outside of (0 = inside the narrowest band, ``len(widths)`` = outside every band)."""
    if any(w < 1 for w in widths):
        raise ConfigError(f"Band widths must be at least 1 pixel; got {tuple(widths)}.")
    level = torch.full(labels.shape, len(widths), dtype=torch.uint8, device=labels.device)
    edge = edges(labels, valid)
    previous = 1
    if _on_cpu_2d(labels):
        packed = PackedMask(edge.numpy())
        for w in widths:  # dilations add up: each band grows from the previous one
            packed.dilate(w - previous)
            previous = w
            level.sub_(torch.from_numpy(packed.unpack().view(np.uint8)))
        return level
    band = edge
    for w in widths:
        band = dilate_elementwise(band, w - previous)
        previous = w
        level.sub_(band.view(torch.uint8))  # nested bands: each one a pixel lies in lowers its level
    return level
