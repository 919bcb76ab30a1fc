"""Grid regions by rules other than the selector: the ceiling (most errors), the band cells and the logit gap."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fornet_cli.hardness.regions import cell_of_pixel, densest_cells, gap_regions, logit_gap


def test_cells_map_to_pixels_as_nearest_upsampling_does() -> None:
    for grid, size in [((2, 3), (8, 12)), ((3, 5), (10, 17)), ((4, 4), (13, 15))]:
        cells = cell_of_pixel(grid, size)
        for k in range(grid[0] * grid[1]):
            mask = torch.zeros(1, 1, grid[0] * grid[1])
            mask[0, 0, k] = 1
            up = F.interpolate(mask.view(1, 1, *grid), size=size, mode="nearest")[0, 0] > 0
            assert torch.equal(up, cells == k)


def test_the_ceiling_takes_the_cells_with_the_most_errors() -> None:
    wrong = torch.zeros(8, 8, dtype=torch.bool)
    wrong[0:4, 4:8] = True  # cell (0, 1): 16 errors
    wrong[4, 0:3] = True  # cell (1, 0): 3 errors
    wrong[7, 7] = True  # cell (1, 1): 1 error
    regions = densest_cells(wrong, (2, 2), [1, 2, 4])
    assert regions.shape == (3, 8, 8)
    assert torch.equal(regions[0], cell_of_pixel((2, 2), (8, 8)) == 1)
    assert [int((r & wrong).sum()) for r in regions] == [16, 19, 20]


def test_the_gap_rule_takes_the_least_sure_cells() -> None:
    logits = torch.zeros(3, 8, 8)
    logits[0] = 5.0  # sure everywhere ...
    logits[1, 4:, 4:] = 4.9  # ... but for cell (1, 1), where two classes are close
    gap = logit_gap(logits)
    assert gap[0, 0] == 5.0 and abs(gap[5, 5] - 0.1) < 1e-6
    regions = gap_regions(gap, (2, 2), [1])
    assert torch.equal(regions[0], cell_of_pixel((2, 2), (8, 8)) == 3)
