import math

import pytest
import torch
import torch.nn.functional as F

from fornet_cli.training.losses import (
    FornetLoss,
    LossConfig,
    cross_entropy,
    dice_loss,
    ohem_cross_entropy,
    selector_loss,
)
from fornet_cli.training.selector import boundary_target


def selector_target(labels: torch.Tensor, grid: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    return boundary_target(labels, grid, 255)


def test_selector_target_rings_on_a_hand_made_label() -> None:
    # 16 x 16 label, left half class 0, right half class 1; grid 4 x 4 (each cell 4 x 4 pixels).
    labels = torch.zeros(1, 16, 16, dtype=torch.long)
    labels[:, :, 8:] = 1
    target, weight = selector_target(labels, (4, 4))
    # boundary pixels are columns 7 and 8 -> grid columns 1 and 2 get 1, columns 0 and 3 get 0.5.
    expected_row = torch.tensor([0.5, 1.0, 1.0, 0.5])
    assert torch.equal(target[0, 0], expected_row.expand(4, 4))
    assert torch.all(weight == 1)


def test_selector_target_second_ring_and_ignored_cells() -> None:
    labels = torch.zeros(1, 32, 32, dtype=torch.long)
    labels[:, :, :2] = 1  # boundary at pixel columns 1 and 2 -> grid column 0 (cells of 4 px)
    labels[:, 24:, :] = 255  # bottom rows ignored: no boundary there, weight 0
    target, weight = selector_target(labels, (8, 8))
    row = target[0, 0, 0]
    assert row[:4].tolist() == [1.0, 0.5, 0.25, 0.0]
    assert torch.all(weight[0, 0, 6:] == 0) and torch.all(weight[0, 0, :6] == 1)
    # the boundary with the ignored region is not a boundary (only valid neighbours count)
    assert target[0, 0, 5, 3:].max() == 0


def test_ignore_next_to_class_is_not_a_boundary_and_single_class_gives_zero() -> None:
    labels = torch.full((1, 8, 8), 3, dtype=torch.long)
    labels[:, :, :2] = 255
    target, weight = selector_target(labels, (2, 2))
    assert torch.all(target == 0) and torch.all(weight == 1)


def test_cross_entropy_is_mean_over_valid_pixels() -> None:
    logits = torch.randn(2, 5, 6, 7)
    labels = torch.randint(0, 5, (2, 6, 7))
    labels[0, :3] = 255
    valid = labels != 255
    manual = -F.log_softmax(logits, 1).gather(1, labels.clamp(max=4).unsqueeze(1))[:, 0][valid].mean()
    assert torch.allclose(cross_entropy(logits, labels), manual)
    assert cross_entropy(logits, torch.full_like(labels, 255)) == 0


def test_dice_averages_present_classes_only() -> None:
    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    labels[0, :, 2:] = 2
    perfect = torch.full((1, 4, 4, 4), -50.0)
    perfect[0, 0, :, :2] = 50
    perfect[0, 2, :, 2:] = 50
    # prediction equals labels: per present class dice = (2*8+1)/(8+8+1) = 1
    assert dice_loss(perfect, labels).item() == pytest.approx(0.0, abs=1e-6)
    uniform = torch.zeros(1, 4, 4, 4)  # p = 0.25 everywhere
    inter, sp, sg = 0.25 * 8, 0.25 * 16, 8
    expected = 1 - (2 * inter + 1) / (sp + sg + 1)
    assert dice_loss(uniform, labels).item() == pytest.approx(expected, rel=1e-6)


def test_selector_loss_is_bce_over_weighted_cells() -> None:
    labels = torch.zeros(1, 16, 16, dtype=torch.long)
    labels[:, :, 8:] = 1
    z = torch.zeros(1, 1, 4, 4)
    assert selector_loss(z, labels).item() == pytest.approx(math.log(2), rel=1e-6)


def test_ohem_keeps_hard_pixels() -> None:
    logits = torch.zeros(1, 2, 1, 4)
    logits[0, 0, 0, :2] = 10  # two easy pixels (class 0 confident)
    labels = torch.zeros(1, 1, 4, dtype=torch.long)
    hard = F.cross_entropy(logits, labels, reduction="none")[0, 0, 2:].mean()
    assert torch.allclose(ohem_cross_entropy(logits, labels, thresh=0.7, min_kept=1), hard)
    assert torch.allclose(ohem_cross_entropy(logits, labels, thresh=0.7, min_kept=4), cross_entropy(logits, labels))


def test_total_loss_weights_and_gradients() -> None:
    logits = torch.randn(2, 4, 16, 16, requires_grad=True)
    z = torch.randn(2, 1, 4, 4, requires_grad=True)
    labels = torch.randint(0, 4, (2, 16, 16))
    terms = FornetLoss(LossConfig())(logits, labels, z)
    assert torch.allclose(terms.total, terms.ce + terms.dice + 0.5 * terms.selector)
    terms.total.backward()
    assert logits.grad.abs().sum() > 0 and z.grad.abs().sum() > 0
    no_sel = FornetLoss(LossConfig(selector_weight=0.0))(logits, labels, z)
    assert no_sel.selector == 0
