"""The figure code: colour maps, grid upsampling, outlines, panels and the show-hardness figure."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from fornet_cli.data.labels import TRAIN_ID_TO_COLOR
from fornet_cli.viz import (
    GroundTruthView,
    HardnessFigureData,
    class_palette,
    colors,
    hardness_panels,
    inferno_lut,
    region_colors,
    render_hardness_figure,
    thumbnail,
)
from fornet_cli.viz.layout import GAP, LegendItem, Panel, compose, font
from fornet_cli.viz.raster import erode, grid_lines, outline, upsample_grid


def test_importance_colormap_runs_from_dark_to_bright() -> None:
    lut = inferno_lut().astype(float)
    luminance = lut @ np.array([0.299, 0.587, 0.114])
    assert lut.shape == (256, 3)
    assert np.all(np.diff(luminance) > 0)  # readable in greyscale: brighter means more important
    assert luminance[0] < 10 and luminance[-1] > 230


def test_palettes() -> None:
    assert np.array_equal(class_palette(19), TRAIN_ID_TO_COLOR[:19])  # the official Cityscapes colours
    assert np.array_equal(class_palette(2, [[1, 2, 3], [4, 5, 6]]), [[1, 2, 3], [4, 5, 6]])
    assert len({tuple(c) for c in region_colors(6)}) == 6


def test_grid_upsampling_is_nearest_as_the_scores_use() -> None:
    grid = torch.arange(7 * 13).view(7, 13)
    ours = upsample_grid(grid.numpy(), (50, 97))
    theirs = F.interpolate(grid[None, None].float(), size=(50, 97), mode="nearest")[0, 0].long().numpy()
    assert np.array_equal(ours, theirs)


def test_outline_and_grid_lines() -> None:
    mask = np.zeros((10, 10), dtype=bool)
    mask[2:8, 2:8] = True
    ring = outline(mask, 2)
    assert ring[2, 2:8].all() and ring[3, 3:7].all() and not ring[4:6, 4:6].any() and not ring[~mask].any()
    lines = grid_lines((64, 128), (4, 8))  # 16 px cells: borders drawn
    assert lines is not None and lines[16].all() and lines[:, 16].all() and not lines[1:16, 1:16].any()
    assert grid_lines((64, 128), (16, 32)) is None  # 4 px cells: the blocks alone show the grid


@pytest.mark.parametrize("radius", [0, 1, 2, 5, 40])
@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (7, 1), (13, 21)])
def test_erode_matches_brute_force(shape: tuple[int, int], radius: int) -> None:
    """cv2.erode against the definition: a pixel stays when its clipped square window is all inside (outside
    the image counts as inside), for radii beyond the image too."""
    h, w = shape
    for density in (0.5, 0.9, 1.0):
        mask = np.random.default_rng(h * w + radius).random(shape) < density
        expected = np.array([[mask[max(0, i - radius) : i + radius + 1, max(0, j - radius) : j + radius + 1].all()
                              for j in range(w)] for i in range(h)], dtype=bool)
        out = erode(mask, radius)
        assert out.dtype == bool and np.array_equal(out, expected)
        assert not np.shares_memory(out, mask)


def _figure_data(with_gt: bool, errors_inside: bool = True) -> HardnessFigureData:
    """A 64 x 128 image on a 4 x 8 grid; errors in the top-left cell, the Top 12.5 % region there or not."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, size=(64, 128, 3), dtype=np.uint8)
    importance = np.linspace(0, 1, 32).reshape(4, 8)
    masks = np.zeros((2, 4, 8), dtype=bool)
    cell = (0, 0) if errors_inside else (3, 7)
    masks[0][cell] = True
    masks[1][cell] = True
    masks[1][1, 1] = True
    prediction = np.zeros((64, 128), dtype=np.int64)
    prediction[:, 64:] = 13  # car
    gt = None
    if with_gt:
        wrong = np.zeros((64, 128), dtype=bool)
        wrong[2:10, 2:10] = True
        band = np.zeros((64, 128), dtype=bool)
        band[:, 62:66] = True
        gt = GroundTruthView(
            evaluated=np.ones((64, 128), dtype=bool), wrong=wrong, band=band, band_width=2, miou=0.5,
            error_rate=64 / 8192, error_recall=(1.0, 1.0), band_share=0.03, band_inside=(0.0, 0.0),
        )
    return HardnessFigureData(
        image=image, importance=importance, masks=masks, ratios=(0.03, 0.06), coverage=(1 / 32, 2 / 32),
        prediction=prediction, palette=class_palette(19), class_names=[f"c{i}" for i in range(19)], stride=16,
        header=("x.png | tiny", "numbers"), ground_truth=gt,
    )


def _count(image: np.ndarray, rgb: tuple[int, int, int]) -> int:
    return int(np.all(image == np.asarray(rgb, dtype=np.uint8), axis=-1).sum())


def test_panels_without_ground_truth() -> None:
    panels = hardness_panels(_figure_data(with_gt=False), panel_width=256)
    assert len(panels) == 4
    titles = [p.title for p in panels]
    assert titles[1] == "importance S, grid 4x8 (stride 16)"
    assert all(p.image.shape == (128, 256, 3) for p in panels)
    assert panels[1].colorbar is not None
    # the regions panel: a legend entry per ratio with its cell count
    assert [item.text for item in panels[2].legend] == ["Top 3% (1 of 32 cells)", "Top 6% (2 of 32 cells)"]
    # the prediction in the official palette: car (13) on the right, named in the legend
    assert [item.color for item in panels[3].legend] == [tuple(TRAIN_ID_TO_COLOR[0]), tuple(TRAIN_ID_TO_COLOR[13])]


@pytest.mark.parametrize("inside", [True, False])
def test_error_panel_shows_whether_errors_fall_inside_the_regions(inside: bool) -> None:
    panels = hardness_panels(_figure_data(with_gt=True, errors_inside=inside), panel_width=256)
    assert len(panels) == 6
    errors, band = panels[4].image, panels[5].image
    caught, missed = _count(errors, colors.ERROR_INSIDE), _count(errors, colors.ERROR_OUTSIDE)
    # 8 x 8 wrong pixels, 2x upscaled: 256 panel pixels, all of one kind
    assert (caught, missed) == ((256, 0) if inside else (0, 256))
    assert "mIoU 50.0%" in panels[4].title and "d = 2 px" in panels[5].title
    # the band (columns 62-65, 124-131 on the panel) is tinted green; away from it, no tint
    assert band[64, 128, 1] > band[64, 128, 0] + 80
    assert abs(int(band[100, 40, 1]) - int(band[100, 40, 0])) < 2


def test_figure_layout_and_thumbnail(tmp_path) -> None:
    fig = render_hardness_figure(_figure_data(with_gt=True), panel_width=256)
    assert fig.width == 3 * 256 + 4 * GAP
    no_gt = render_hardness_figure(_figure_data(with_gt=False), panel_width=256)
    assert no_gt.width == 2 * 256 + 4 * GAP - GAP
    fig.save(tmp_path / "f.png")
    assert Image.open(tmp_path / "f.png").size == fig.size
    thumb = thumbnail(_figure_data(with_gt=False), width=64)
    assert thumb.size == (64, 32)


def test_compose_wraps_long_legends_and_uses_the_builtin_font() -> None:
    assert font(15).size == 15  # a scalable font (Pillow >= 10.1), no font file needed
    image = np.zeros((20, 200, 3), dtype=np.uint8)
    short = compose([Panel("t", image, legend=[LegendItem("a", (255, 0, 0))])], 1, panel_width=200)
    long = compose([Panel("t", image, legend=[LegendItem(f"item number {i}", (255, 0, 0)) for i in range(8)])], 1,
                   panel_width=200)
    assert long.height > short.height and long.width == short.width
