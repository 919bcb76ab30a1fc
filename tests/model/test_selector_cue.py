"""``selector_cue="gap"``: the selector's score adds where the prediction with the branches off is unsure."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from fornet_cli.data.labels import CLASS_NAMES, TRAIN_ID_TO_COLOR
from fornet_cli.export.exporter import ExportOptions, export_onnx, scene_batch
from fornet_cli.model import FornetModel
from fornet_cli.model.calibrate import calibrate_batchnorm
from fornet_cli.model.fornet import RULE_TIEBREAK
from fornet_cli.model.variants import MBV3_V1, MBV3_V3
from fornet_cli.weights.format import meta_for

CUE = replace(MBV3_V3, selector_cue="gap")


def _model(cue: str = "gap") -> FornetModel:
    torch.manual_seed(0)
    return calibrate_batchnorm(FornetModel(replace(CUE, selector_cue=cue), num_classes=5)).eval()


def _first_pass_gap(model: FornetModel, x: torch.Tensor) -> tuple[torch.Tensor, object]:
    """The mean top-2 gap of the first decoder pass per stride-16 cell (``1 x h x w``), and the outputs."""
    first: list[torch.Tensor] = []
    hook = model.decoder.register_forward_hook(lambda _m, _a, out: first.append(out))
    try:
        with torch.no_grad():
            out = model.forward_all(x)
    finally:
        hook.remove()
    assert len(first) == 2  # the cue's pass (branches off), then the model's own
    top2 = first[0].topk(2, dim=1).values
    gap = top2[:, 0] - top2[:, 1]
    h, w = gap.shape[-2] // 2, gap.shape[-1] // 2
    return gap.reshape(1, h, 2, w, 2).mean(dim=(2, 4)), out


def test_with_a_silent_selector_the_score_is_minus_the_first_pass_gap_on_the_grid() -> None:
    model = _model()
    with torch.no_grad():  # the learned part says nothing: z is the cue alone
        model.selector.score.weight.zero_()
        model.selector.score.bias.zero_()
    blocks, out = _first_pass_gap(model, torch.randn(1, 3, 128, 192))
    # Each stride-16 cell holds the mean gap of its 2 x 2 stride-8 pixels.
    assert blocks.shape == (1, 8, 12)
    torch.testing.assert_close(out.importance[:, 0], -blocks)
    # So the widest Top-K region holds the cells where the first pass was least sure.
    widest = out.masks[0, -1].bool()
    assert blocks[0][widest].max() <= blocks[0][~widest].min()


def test_as_a_rule_the_cue_ranks_the_cells_whatever_the_learned_score_says() -> None:
    model = _model("gap_rule")
    with torch.no_grad():  # a loud learned selector
        model.selector.score.weight.mul_(5.0)
    blocks, out = _first_pass_gap(model, torch.randn(1, 3, 128, 192))
    z = out.importance[:, 0]
    learned = (z + blocks) / RULE_TIEBREAK  # z = cue + RULE_TIEBREAK * learned, cue = -blocks
    widest = out.masks[0, -1].bool()
    # Alone, the learned score would choose other cells ...
    assert not torch.equal(learned[0] >= learned[0][widest].min(), widest)
    # ... but it only breaks ties: a selected cell is at most 2 * RULE_TIEBREAK * max|learned| surer.
    slack = 2 * RULE_TIEBREAK * float(learned.abs().max())
    for i in range(out.masks.shape[1]):
        region = out.masks[0, i].bool()
        assert blocks[0][region].max() <= blocks[0][~region].min() + slack
    assert slack < 0.5 * float(blocks.max() - blocks.min())  # the tie-break is small against the cue's range


def test_the_cue_does_not_train_through_the_first_pass() -> None:
    model = _model().train()
    out = model.forward_all(torch.randn(2, 3, 64, 96))
    out.importance.sum().backward()
    # The selector's score gets gradient; the decoder only through the model's own logits, not the cue.
    assert model.selector.score.weight.grad is not None
    assert model.decoder.high.weight.grad is None


def test_a_cue_with_a_decoder_that_has_batchnorm_is_refused() -> None:
    with pytest.raises(ValueError, match="needs the linear decoder"):
        FornetModel(replace(MBV3_V1, selector_cue="gap"))
    with pytest.raises(ValueError, match="unknown selector_cue"):
        FornetModel(replace(CUE, selector_cue="entropy"))


def test_onnx_export_with_the_cue_matches_eager_at_other_sizes(tmp_path: Path) -> None:
    model = _model()
    meta = meta_for(model, CLASS_NAMES[:5], TRAIN_ID_TO_COLOR[:5].tolist())
    path = tmp_path / "cue.onnx"
    result = export_onnx(model, path, ExportOptions(height=64, width=128), meta=meta)
    assert all(c.passed for c in result.checks)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for h, w in ((96, 160), (160, 96)):
        x = scene_batch(1, h, w, meta, seed=5)
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
        with torch.inference_mode():
            ref = model(x).numpy()
        assert got.shape == ref.shape
        assert np.abs(got - ref).max() < 5e-5 * max(1.0, np.abs(ref).max())  # float32 rounding, relative
        assert (got.argmax(1) == ref.argmax(1)).mean() > 0.999
