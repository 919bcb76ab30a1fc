"""``mask_branch_output``: a branch changes the head's feature only at its own selected positions."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from fornet_cli.model import FornetModel
from fornet_cli.model.variants import MBV3_V2


def _agg_and_feature(model: FornetModel, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The decoder's head input (F_agg), the selector's input (F) and the masks of one forward pass."""
    seen: dict[str, torch.Tensor] = {}

    def keep(name: str):
        def hook(_module: torch.nn.Module, args: tuple) -> None:  # returns None: the input stays as it is
            seen[name] = args[0]
        return hook

    hooks = [model.decoder.register_forward_pre_hook(keep("agg")), model.selector.register_forward_pre_hook(keep("feat"))]
    try:
        with torch.no_grad():
            out = model.forward_all(x)
    finally:
        for h in hooks:
            h.remove()
    return seen["agg"], seen["feat"], out.masks


@pytest.mark.parametrize("masked", [True, False])
def test_branch_output_counts_only_inside_the_selection_when_masked(masked: bool) -> None:
    torch.manual_seed(0)
    # Not residual: zero-initialised branches would leave F_agg = F everywhere and prove nothing.
    model = FornetModel(replace(MBV3_V2, mask_branch_output=masked), num_classes=5).eval()
    agg, feat, masks = _agg_and_feature(model, torch.randn(1, 3, 96, 160))
    outside = masks.amax(dim=1, keepdim=True).expand_as(agg) == 0
    inside = ~outside
    assert bool(outside.any()) and bool(inside.any())
    # Masked: F_agg = F exactly where no branch selected the position, and differs inside the selection.
    # Unmasked (the paper): the branches' kernels spill their output onto unselected positions too.
    assert torch.equal(agg[outside], feat[outside]) is masked
    assert not torch.allclose(agg[inside], feat[inside])
