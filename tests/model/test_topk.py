import pytest
import torch

from fornet_cli.errors import ConfigError
from fornet_cli.model.topk import normalize_ratios, straight_through, topk_counts, topk_masks


@pytest.mark.parametrize("h,w", [(1, 1), (3, 5), (7, 11), (16, 32)])
def test_exact_k_and_nesting(h: int, w: int) -> None:
    ratios = (0.1, 0.2, 0.3, 0.4)
    scores = torch.randn(3, 1, h, w)
    masks = topk_masks(scores, ratios)
    assert masks.shape == (3, 4, h, w)
    n = h * w
    for i, r in enumerate(ratios):
        k = min(n, max(1, round(r * n)))
        assert masks[:, i].flatten(1).sum(1).tolist() == [k] * 3
    assert torch.all(masks[:, :-1] <= masks[:, 1:]), "masks must be nested"


def test_selected_positions_are_the_highest_scores() -> None:
    scores = torch.randn(2, 1, 6, 7)
    masks = topk_masks(scores, (0.25,)).bool()
    for b in range(2):
        sel = scores[b, 0][masks[b, 0]]
        rest = scores[b, 0][~masks[b, 0]]
        assert sel.min() >= rest.max()


def test_ties_still_give_exact_k() -> None:
    scores = torch.zeros(2, 1, 10, 10)  # every position ties
    masks = topk_masks(scores, (0.1, 0.35, 0.5, 1.0))
    assert masks.flatten(2).sum(2).tolist() == [[10, 35, 50, 100]] * 2
    assert torch.all(masks[:, :-1] <= masks[:, 1:])


def test_ratio_zero_and_one() -> None:
    scores = torch.randn(1, 1, 4, 4)
    masks = topk_masks(scores, (0.0, 1.0))
    assert masks[:, 0].sum() == 0
    assert masks[:, 1].sum() == 16


def test_counts_round_half_to_even_like_python() -> None:
    n = torch.tensor(10)
    # 0.25 * 10 = 2.5 -> 2 (Python's round and torch.round both round half to even)
    assert [int(k) for k in topk_counts(n, (0.25, 0.35, 0.01, 1.0))] == [round(2.5), round(3.5), 1, 10]


def test_straight_through_forward_is_hard_and_backward_reaches_scores() -> None:
    s = torch.rand(1, 1, 3, 3, requires_grad=True)
    m = (torch.rand(1, 1, 3, 3) > 0.5).float()
    out = straight_through(m, s)
    assert torch.equal(out, m)
    g = torch.randn_like(out)
    (out * g).sum().backward()
    assert torch.allclose(s.grad, g)


@pytest.mark.parametrize("bad", [(-0.1, 0.2, 0.3, 0.4), (0.1, 1.5, 0.3, 0.4), (0.1, 0.2), (float("nan"),) * 4])
def test_bad_ratios_are_refused(bad: tuple) -> None:
    with pytest.raises(ConfigError):
        normalize_ratios(bad, 4)


def test_single_ratio_applies_to_every_branch() -> None:
    assert normalize_ratios(0, 4) == (0.0, 0.0, 0.0, 0.0)
    assert normalize_ratios([1], 4) == (1.0, 1.0, 1.0, 1.0)
