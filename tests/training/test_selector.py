"""The selector's targets and fits (fornet_cli/training/selector.py) on hand-made cases."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from fornet_cli.errors import ConfigError
from fornet_cli.training.config import recipe
from fornet_cli.training.losses import FornetLoss, LossConfig, resolve_selector, selector_loss
from fornet_cli.training.selector import error_target, fit


def _two_class_logits(pred: torch.Tensor) -> torch.Tensor:
    """B x 2 x H x W logits whose argmax is ``pred``."""
    return torch.stack([(pred == 0).float(), (pred == 1).float()], dim=1) * 4.0


def test_error_target_is_the_share_of_wrong_valid_pixels_per_cell() -> None:
    labels = torch.zeros(1, 8, 8, dtype=torch.long)
    pred = torch.zeros(1, 8, 8, dtype=torch.long)
    pred[0, :4, :4] = 1  # cell (0, 0) entirely wrong
    pred[0, 4, 4] = 1  # one of the 16 pixels of cell (1, 1) wrong
    labels[0, :4, 4:] = 255  # cell (0, 1) has no valid pixel
    labels[0, 4:, :2] = 255  # half of cell (1, 0) ignored; its other half is right
    pred[0, 4:, :2] = 1  # ... and the wrong predictions on ignored pixels do not count
    share, weight = error_target(_two_class_logits(pred), labels, (2, 2), 255)
    assert share[0, 0].tolist() == [[1.0, 0.0], [0.0, 1 / 16]]
    assert weight[0, 0].tolist() == [[1.0, 0.0], [1.0, 1.0]]


def test_error_target_upsamples_low_resolution_logits_like_the_model() -> None:
    labels = torch.zeros(1, 8, 8, dtype=torch.long)
    labels[0, :, 4:] = 1
    coarse = _two_class_logits(torch.zeros(1, 2, 2, dtype=torch.long))  # predicts class 0 everywhere
    share, _ = error_target(coarse, labels, (2, 2), 255)
    assert share[0, 0].tolist() == [[0.0, 1.0], [0.0, 1.0]]


def test_bce_fit_averages_over_weighted_cells() -> None:
    z = torch.tensor([[[[0.0, 2.0], [-1.0, 5.0]]]])
    target = torch.tensor([[[[0.0, 1.0], [0.5, 0.3]]]])
    weight = torch.tensor([[[[1.0, 1.0], [1.0, 0.0]]]])
    expected = F.binary_cross_entropy_with_logits(z[..., [0, 0, 1], [0, 1, 0]], target[..., [0, 0, 1], [0, 1, 0]])
    assert torch.isclose(fit(z, target, weight, "bce"), expected)


def test_rank_fit_is_the_cross_entropy_of_the_error_mass_and_prefers_the_right_order() -> None:
    target = torch.tensor([[[[0.6, 0.2], [0.2, 0.0]]]])
    weight = torch.ones_like(target)
    z = torch.tensor([[[[1.0, 0.0], [0.0, -1.0]]]])
    q = torch.softmax(z.flatten(), 0)
    expected = -(0.6 * math.log(q[0]) + 0.2 * math.log(q[1]) + 0.2 * math.log(q[2]))
    assert fit(z, target, weight, "rank").item() == pytest.approx(expected, rel=1e-5)
    assert fit(z, target, weight, "rank") < fit(-z, target, weight, "rank")  # errors ranked first cost less


def test_rank_fit_skips_cells_without_valid_pixels_and_images_without_errors() -> None:
    target = torch.tensor([[[[1.0, 0.0]]], [[[0.0, 0.0]]]])  # image 2 has no errors
    weight = torch.tensor([[[[1.0, 0.0]]], [[[1.0, 1.0]]]])  # image 1's second cell has no valid pixel
    z = torch.tensor([[[[0.0, 50.0]]], [[[3.0, -3.0]]]], requires_grad=True)
    loss = fit(z, target, weight, "rank")
    assert loss.item() == pytest.approx(0.0, abs=1e-6)  # the excluded cell does not compete
    loss.backward()
    assert torch.isfinite(z.grad).all() and z.grad[1].abs().sum() == 0


def test_aux_error_target_needs_aux_logits() -> None:
    labels = torch.zeros(1, 8, 8, dtype=torch.long)
    with pytest.raises(ConfigError, match="auxiliary logits"):
        selector_loss(torch.zeros(1, 1, 2, 2), labels, target="aux_error")


def test_the_loss_adds_the_auxiliary_cross_entropy_and_trains_the_selector_on_its_errors() -> None:
    torch.manual_seed(0)
    labels = torch.randint(0, 3, (2, 16, 16))
    logits = torch.randn(2, 3, 16, 16)
    aux = torch.randn(2, 3, 4, 4)
    z = torch.zeros(2, 1, 4, 4, requires_grad=True)
    config = LossConfig(dice_weight=0.0, selector_target="aux_error", selector_fit="rank", aux_weight=0.4)
    terms = FornetLoss(config)(logits, labels, z, aux)
    up = F.interpolate(aux, size=(16, 16), mode="bilinear", align_corners=False)
    assert torch.isclose(terms.aux, F.cross_entropy(up, labels))
    assert torch.isclose(terms.total, terms.ce + 0.5 * terms.selector + 0.4 * terms.aux)
    terms.total.backward()
    assert z.grad.abs().sum() > 0


def test_unknown_selector_target_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="selector_target must be auto or one of"):
        LossConfig(selector_target="edges")


def test_auto_learns_the_auxiliary_errors_when_the_model_has_them_and_the_band_otherwise() -> None:
    auto = LossConfig()
    assert resolve_selector(auto, has_aux=True) == ("aux_error", "rank")  # our v2 variants
    assert resolve_selector(auto, has_aux=False) == ("boundary", "bce")  # fornet_r101 and the first designs
    assert resolve_selector(LossConfig(selector_target="error"), has_aux=True) == ("error", "rank")
    paper = recipe("paper").loss  # the paper's target whatever the model
    assert resolve_selector(paper, has_aux=True) == ("boundary", "bce") and paper.aux_weight == 0.0
    torch.manual_seed(0)
    labels = torch.randint(0, 3, (2, 16, 16))
    logits, aux = torch.randn(2, 3, 16, 16), torch.randn(2, 3, 4, 4)
    z = torch.randn(2, 1, 4, 4)
    got = FornetLoss(LossConfig(dice_weight=0.0))(logits, labels, z, aux).selector
    want = selector_loss(z, labels, target="aux_error", fit="rank", aux=aux)
    assert torch.isclose(got, want)
    band = FornetLoss(LossConfig(dice_weight=0.0))(logits, labels, z).selector
    assert torch.isclose(band, selector_loss(z, labels, target="boundary", fit="bce"))
