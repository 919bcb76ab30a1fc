"""morphology.py (OpenCV and bit-packed on CPU, element-wise torch elsewhere) against brute force from the
definitions: random label maps with invalid pixels, edges at the image border, widths beyond the image."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fornet_cli.evaluation.morphology import boundary_band, dilate, distance_levels, edge_distance, edges


def _brute_edges(labels: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Pixels whose clipped 3 x 3 window holds two valid pixels of different labels."""
    h, w = labels.shape
    out = np.zeros((h, w), dtype=bool)
    for i in range(h):
        for j in range(w):
            rows, cols = slice(max(0, i - 1), i + 2), slice(max(0, j - 1), j + 2)
            out[i, j] = len(set(labels[rows, cols][valid[rows, cols]].tolist())) > 1
    return out


def _brute_distance(edge: np.ndarray) -> np.ndarray:
    """Chebyshev distance to the nearest edge pixel; inf without edges."""
    h, w = edge.shape
    ys, xs = np.nonzero(edge)
    yy, xx = np.mgrid[0:h, 0:w]
    if not len(ys):
        return np.full((h, w), np.inf)
    d = np.maximum(np.abs(yy[..., None] - ys), np.abs(xx[..., None] - xs))
    return d.min(axis=-1).astype(float)


def _maps(seed: int, h: int, w: int, classes: int, void: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    # blocks of a few pixels (borders like real label maps), then single-pixel noise
    labels = rng.integers(0, classes, (h // 3 + 1, w // 3 + 1)).repeat(3, 0).repeat(3, 1)[:h, :w]
    noise = rng.random((h, w)) < 0.1
    labels[noise] = rng.integers(0, classes, int(noise.sum()))
    return labels.astype(np.uint8), rng.random((h, w)) >= void


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    h=st.integers(1, 24),
    w=st.integers(1, 24),
    classes=st.integers(1, 4),
    void=st.sampled_from([0.0, 0.3, 1.0]),
    widths=st.lists(st.integers(1, 60), min_size=1, max_size=5).map(sorted),
)
def test_every_cpu_operation_matches_brute_force(
    seed: int, h: int, w: int, classes: int, void: float, widths: list[int]
) -> None:
    labels, valid = _maps(seed, h, w, classes, void)
    lt, vt = torch.from_numpy(labels), torch.from_numpy(valid)
    edge = _brute_edges(labels, valid)
    distance = _brute_distance(edge)
    assert np.array_equal(edges(lt, vt).numpy(), edge)
    assert np.array_equal(edges(lt).numpy(), _brute_edges(labels, np.ones_like(valid)))
    got = edge_distance(torch.from_numpy(edge))
    assert got.dtype == np.float32 and got.shape == (h, w)
    assert np.array_equal(np.where(np.isinf(distance), np.finfo(np.float32).max, distance), got)
    for width in widths:  # widths up to 60 > 24: a band may cover the whole image
        band = distance <= width - 1
        assert np.array_equal(boundary_band(lt, width, vt).numpy(), band)
        assert np.array_equal(dilate(torch.from_numpy(edge), width - 1).numpy(), band)
    expected = sum((distance > width - 1).astype(np.uint8) for width in widths)
    assert np.array_equal(distance_levels(lt, widths, vt).numpy(), expected)
    # the element-wise torch path (GPUs, batches) agrees with the CPU path
    batched = distance_levels(lt[None], widths, vt[None])[0]
    assert np.array_equal(batched.numpy(), expected)
    assert np.array_equal(edges(lt[None], vt[None])[0].numpy(), edge)
