"""Focus inference (inference/focus.py, Predictor.focus): tile ranking and selection on hand-made cases,
windows, no seams where the full-resolution answer is known, budget 0 = the coarse pass, budget 1 = full
resolution, the FoR-Net tile context, every runtime and variant, peers and sliding windows."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import fornet_cli
from fornet_cli.errors import ConfigError
from fornet_cli.inference.focus import rank_average, select_tiles, tile_grid, tile_scores, uncertainty, window_for
from fornet_cli.inference.predictor import InferenceConfig, Predictor
from fornet_cli.model.calibrate import calibrate_batchnorm
from fornet_cli.model.outputs import FocusContext, mask_thresholds


class BoxFilter(nn.Module):
    """A segmenter whose full-resolution answer is known: two classes from 5x5 box filters of the colour
    channels (zero padding), so a window with a halo of 2 or more reproduces it exactly inside its tile."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 5, padding=2, bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[0, 0] = 1 / 25
            self.conv.weight[1, 1] = 1 / 25

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * 8.0


def _fornet(name: str = "fornet_mbv3") -> nn.Module:
    torch.manual_seed(0)
    return calibrate_batchnorm(fornet_cli.create_model(name, num_classes=19)).eval()


def _scene(h: int = 128, w: int = 256, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.interpolate(torch.randn(1, 3, h // 16, w // 16, generator=g), size=(h, w), mode="bilinear") + 0.2 * torch.randn(1, 3, h, w, generator=g)


# ------------------------------------------------------------------------------------------ hand-made cases


def test_tile_grid_covers_the_image_once_with_smaller_last_tiles() -> None:
    tiles = tile_grid(100, 250, 64)
    assert len(tiles) == 2 * 4
    assert tiles[3] == (0, 64, 192, 250) and tiles[-1] == (64, 100, 192, 250)
    cover = torch.zeros(100, 250, dtype=torch.int32)
    for y1, y2, x1, x2 in tiles:
        cover[y1:y2, x1:x2] += 1
    assert torch.all(cover == 1)


def test_tiles_are_ranked_by_mean_hardness_at_any_map_resolution() -> None:
    tiles = tile_grid(64, 128, 32)  # 2 x 4 tiles
    hard = torch.zeros(64, 128)
    hard[32:64, 96:128] = 1.0  # the last tile is hard everywhere
    hard[0:16, 32:64] = 1.0  # the second is hard in half its area
    full = tile_scores(hard, tiles, (64, 128))
    assert full.tolist() == [0, 0.5, 0, 0, 0, 0, 0, 1]
    coarse = F.avg_pool2d(hard[None, None], 2)[0, 0]  # the same map at half resolution
    assert torch.allclose(tile_scores(coarse, tiles, (64, 128)), full)
    assert select_tiles(full, tiles, 0.25, 64 * 128) == [7, 1]  # two of eight tiles: the hardest first


def test_selection_keeps_to_the_budget_and_passes_over_a_tile_too_large() -> None:
    tiles = [(0, 10, 0, 10), (0, 10, 10, 12), (0, 10, 12, 20)]  # areas 100, 20, 80 of 200
    scores = torch.tensor([0.9, 0.5, 0.7])
    assert select_tiles(scores, tiles, 0.5, 200) == [0]  # 100 pixels fit; neither of the others fits beside them
    assert select_tiles(scores, tiles, 0.6, 200) == [0, 1]  # the 80-pixel tile does not fit, the 20-pixel one does
    assert select_tiles(scores, tiles, 0.0, 200) == []
    assert select_tiles(torch.tensor([0.5, 0.5, 0.5]), tiles, 1.0, 200) == [0, 1, 2]  # ties: the earlier first


def test_rank_average_and_uncertainty() -> None:
    assert rank_average(torch.tensor([0.1, 0.9, 0.5]), torch.tensor([30.0, 10.0, 20.0])).tolist() == [1.0, 1.0, 1.0]
    logits = torch.tensor([[[[5.0, 9.0]], [[5.0, 0.0]]]])  # pixel 1: a tie; pixel 2: sure
    u = uncertainty(logits)[0, 0]
    assert u[0] == pytest.approx(1.0) and u[1] < 0.01


def test_windows_have_one_size_hold_their_tile_and_stay_inside() -> None:
    h, w, tile, halo = 100, 250, 64, 16
    for box in tile_grid(h, w, tile):
        y1, y2, x1, x2 = window_for(box, halo, h, w, tile)
        assert (y2 - y1, x2 - x1) == (96, 96)
        assert 0 <= y1 <= box[0] and box[1] <= y2 <= h and 0 <= x1 <= box[2] and box[3] <= x2 <= w
    assert window_for((0, 32, 0, 32), 16, 40, 40, 32) == (0, 40, 0, 40)  # an image smaller than a window


# ------------------------------------------------------------------------------------------ the predictor


def test_halo_and_pasting_leave_no_seams() -> None:
    model = BoxFilter()
    x = _scene(96, 160)
    full = Predictor(model).scores(x)
    coarse = Predictor(model, InferenceConfig(scales=(0.5,))).scores(x)
    run = Predictor(model, InferenceConfig(focus=0.4, focus_tile=32, focus_halo=4)).focus(x)
    refined = torch.zeros(96, 160, dtype=torch.bool)
    for y1, y2, x1, x2 in run.refined[0]:
        refined[y1:y2, x1:x2] = True
    assert 0 < refined.float().mean() <= 0.4
    # inside the refined tiles: exactly the full-resolution answer, up to the tile's edge
    assert torch.allclose(run.logits[..., refined], full[..., refined], atol=1e-5)
    assert torch.equal(run.logits[..., ~refined], coarse[..., ~refined])


def test_a_halo_smaller_than_the_receptive_field_shows_at_tile_edges() -> None:
    """The same check fails without a halo: it can see a seam."""
    model = BoxFilter()
    x = _scene(96, 160)
    full = Predictor(model).scores(x)
    run = Predictor(model, InferenceConfig(focus=0.4, focus_tile=32, focus_halo=0)).focus(x)
    y1, y2, x1, x2 = next(b for b in run.refined[0] if b[0] > 0 and b[2] > 0)
    assert not torch.allclose(run.logits[..., y1:y2, x1:x2], full[..., y1:y2, x1:x2], atol=1e-5)


def test_budget_zero_is_the_coarse_pass_and_one_is_full_resolution() -> None:
    model = _fornet()
    x = _scene()
    coarse = Predictor(model, InferenceConfig(scales=(0.5,))).scores(x)
    full = Predictor(model).scores(x)
    zero = Predictor(model, InferenceConfig(focus=0.0)).focus(x)
    assert zero.refined == [[]] and torch.equal(zero.logits, coarse)
    one = Predictor(model, InferenceConfig(focus=1.0, focus_tile=32, focus_halo=8)).focus(x)
    assert len(one.refined[0]) == len(tile_grid(128, 256, 32))
    agree = (one.logits.argmax(1) == full.argmax(1)).float().mean().item()
    assert agree >= 0.995


def test_the_image_context_reproduces_the_image_itself() -> None:
    """A FoR-Net tile given its image's own pooled feature and Top-K thresholds computes what the image does."""
    model = _fornet()
    x = _scene()
    with torch.no_grad():
        out = model.forward_all(x)
        again = model.forward_all(x, FocusContext(out.pooled, mask_thresholds(out.importance, out.masks)))
    assert torch.equal(again.masks, out.masks)
    assert torch.allclose(again.logits, out.logits, atol=1e-5)


def test_mask_thresholds_select_all_or_nothing_at_any_grid() -> None:
    z = torch.tensor([[[[0.3, -1.0], [2.0, 0.5]]]])
    masks = torch.stack([torch.zeros(2, 2), (z[0, 0] >= 0.5).float(), torch.ones(2, 2)])[None]
    thr = mask_thresholds(z, masks)[0]
    assert thr[0] == float("inf") and thr[1] == 0.5 and thr[2] == float("-inf")


def test_tiles_take_the_image_context_and_thresholds() -> None:
    """A tile's Top-K masks follow the image's thresholds, not a ratio of the tile."""
    model = _fornet()
    x = _scene()
    with torch.no_grad():
        out = model.forward_all(x)
        focus = FocusContext(out.pooled, mask_thresholds(out.importance, out.masks))
        tile = x[..., :64, :64]
        own, given = model.forward_all(tile), model.forward_all(tile, focus)
    expected = (given.importance >= focus.thresholds[:, :, None, None]).float()
    assert torch.equal(given.masks, expected)
    assert not torch.equal(own.masks, given.masks) or not torch.allclose(own.logits, given.logits)


def test_every_variant_runs_focus_inference(variant: str) -> None:
    model = _fornet(variant)
    run = Predictor(model, InferenceConfig(focus=0.25, focus_tile=32, focus_halo=8)).focus(_scene(64, 128))
    assert run.logits.shape == (1, 19, 64, 128) and run.ranking == "importance"
    assert 0 < len(run.refined[0]) <= 2 and torch.isfinite(run.logits).all()


@pytest.mark.parametrize("ranking", ["importance", "uncertainty", "both"])
def test_rankings_pick_different_tiles_within_the_budget(ranking: str) -> None:
    model = _fornet()
    run = Predictor(model, InferenceConfig(focus=0.2, focus_tile=32, focus_rank=ranking)).focus(_scene())
    assert run.ranking == ranking
    assert sum((y2 - y1) * (x2 - x1) for y1, y2, x1, x2 in run.refined[0]) <= 0.2 * 128 * 256
    order = torch.argsort(run.scores[0], descending=True, stable=True).tolist()
    tiles = tile_grid(128, 256, 32)
    assert run.refined[0] == [tiles[i] for i in order[: len(run.refined[0])]]


def test_onnxruntime_focus_matches_eager() -> None:
    pytest.importorskip("onnxruntime")
    model = _fornet()
    x = _scene()
    cfg = dict(focus=0.25, focus_tile=32, focus_halo=8)
    lines: list[str] = []
    eager = Predictor(model, InferenceConfig(**cfg)).focus(x)
    onnx = Predictor(model, InferenceConfig(runtime="onnxruntime", **cfg), notify=lines.append).focus(x)
    assert onnx.refined == eager.refined and len(onnx.refined[0]) > 0
    assert torch.allclose(onnx.logits, eager.logits, atol=1e-3)
    assert any(line.startswith("Runtime: onnxruntime") for line in lines)
    assert not any("fell back" in line for line in lines), lines


def test_peers_and_sliding_windows_rank_by_uncertainty() -> None:
    x = _scene(96, 160)
    run = Predictor(BoxFilter(), InferenceConfig(focus=0.3, focus_tile=32, focus_halo=4, focus_rank="importance")).focus(x)
    assert run.ranking == "uncertainty"  # no selector: the coarse prediction's uncertainty ranks
    windows = dict(mode="slide", crop_size=(64, 64), stride=(48, 48))
    slide_full = Predictor(BoxFilter(), InferenceConfig(**windows)).scores(x)
    slide = InferenceConfig(**windows, focus=1.0, focus_tile=32, focus_halo=4)
    assert torch.allclose(Predictor(BoxFilter(), slide).scores(x), slide_full, atol=1e-6)
    fornet_slide = Predictor(_fornet(), InferenceConfig(mode="slide", crop_size=(64, 64), stride=(48, 48), focus=0.3,
                                                        focus_tile=32)).focus(x)
    assert fornet_slide.ranking == "uncertainty" and fornet_slide.logits.shape[-2:] == (96, 160)


def test_confident_merge_takes_the_surer_logits() -> None:
    model = _fornet()
    x = _scene()
    paste = Predictor(model, InferenceConfig(focus=0.3, focus_tile=32)).focus(x).logits
    merged = Predictor(model, InferenceConfig(focus=0.3, focus_tile=32, focus_merge="confident")).focus(x).logits
    coarse = Predictor(model, InferenceConfig(scales=(0.5,))).scores(x)
    conf = lambda t: t.softmax(1).amax(1)  # noqa: E731
    took = ~torch.isclose(merged, coarse).all(1)
    assert torch.all(conf(merged) >= conf(coarse) - 1e-6) and took.any()
    assert torch.all(torch.isclose(merged, paste).all(1) | ~took)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"focus": 1.5}, "from 0 to 1"),
        ({"focus": 0.2, "scales": (0.5, 1.0)}, "--tta"),
        ({"focus": 0.2, "focus_rank": "random"}, "focus ranking"),
        ({"focus": 0.2, "focus_tile": 8}, "at least 16"),
        ({"focus": 0.2, "focus_scale": 0.0}, "(0, 1]"),
        ({"focus": 0.2, "focus_merge": "blend"}, "focus merge"),
    ],
)
def test_bad_focus_settings_are_refused(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):
        InferenceConfig(**options)
