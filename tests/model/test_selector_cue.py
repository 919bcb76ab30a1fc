"""``selector_cue``: the selector's score adds (or is ranked by) where the prediction with the branches off is
unsure: "gap", "gap_rule", "error_rule"; set in the config or at run time."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from fornet_cli.data.labels import CLASS_NAMES, TRAIN_ID_TO_COLOR
from fornet_cli.errors import ConfigError
from fornet_cli.export.exporter import ExportOptions, export_onnx, scene_batch
from fornet_cli.model import FornetModel
from fornet_cli.model.calibrate import calibrate_batchnorm
from fornet_cli.model.fornet import ERROR_CUE_EPS, RULE_TIEBREAK
from fornet_cli.model.variants import MBV3_V1, MBV3_V3
from fornet_cli.weights.format import meta_for

CUE = replace(MBV3_V3, selector_cue="gap")


def _model(cue: str = "gap") -> FornetModel:
    torch.manual_seed(0)
    return calibrate_batchnorm(FornetModel(replace(CUE, selector_cue=cue), num_classes=5)).eval()


def _first_pass(model: FornetModel, x: torch.Tensor) -> tuple[torch.Tensor, object]:
    """The first decoder pass's logits (stride 8) and the model's outputs."""
    first: list[torch.Tensor] = []
    hook = model.decoder.register_forward_hook(lambda _m, _a, out: first.append(out))
    try:
        with torch.no_grad():
            out = model.forward_all(x)
    finally:
        hook.remove()
    assert len(first) == 2  # the cue's pass (branches off), then the model's own
    return first[0], out


def _cells(values: torch.Tensor) -> torch.Tensor:
    """``1 x H x W`` stride-8 values -> their mean per stride-16 cell (2 x 2 blocks)."""
    h, w = values.shape[-2] // 2, values.shape[-1] // 2
    return values.reshape(1, h, 2, w, 2).mean(dim=(2, 4))


def _first_pass_gap(model: FornetModel, x: torch.Tensor) -> tuple[torch.Tensor, object]:
    """The mean top-2 gap of the first decoder pass per stride-16 cell (``1 x h x w``), and the outputs."""
    logits, out = _first_pass(model, x)
    top2 = logits.topk(2, dim=1).values
    return _cells(top2[:, 0] - top2[:, 1]), out


def _silence(model: FornetModel) -> None:
    with torch.no_grad():  # the learned part says nothing: z is the cue alone
        model.selector.score.weight.zero_()
        model.selector.score.bias.zero_()


def test_with_a_silent_selector_the_score_is_minus_the_first_pass_gap_on_the_grid() -> None:
    model = _model()
    _silence(model)
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


def test_the_error_rule_ranks_cells_by_the_first_pass_share_of_expected_errors() -> None:
    model = _model("error_rule")
    _silence(model)
    logits, out = _first_pass(model, torch.randn(1, 3, 128, 192))
    # The stride-8 logits at stride 4 (bilinear, as the model's own are upsampled), then per stride-16 cell
    # (4 x 4 of them) the mean of 1 - max softmax.
    fine = torch.nn.functional.interpolate(logits, scale_factor=2.0, mode="bilinear", align_corners=False)
    unsure = 1.0 - torch.softmax(fine, dim=1).amax(dim=1)
    share = unsure.reshape(1, 8, 4, 12, 4).mean(dim=(2, 4))
    # importance = sigmoid(z) is each cell's expected share of wrong pixels (up to the clamp that keeps z finite)
    torch.testing.assert_close(torch.sigmoid(out.importance[:, 0]), share.clamp(ERROR_CUE_EPS, 1 - ERROR_CUE_EPS))
    widest = out.masks[0, -1].bool()
    assert share[0][widest].min() >= share[0][~widest].max()
    # Not the gap's order: a cell of a few very sure pixels among unsure ones ranks by its share, not its mean gap.
    logits = torch.tensor([[10.0, 0.0], [0.1, 0.0], [0.1, 0.0], [0.1, 0.0]]).T.reshape(1, 2, 2, 2)
    few_sure = _cells(1.0 - torch.softmax(logits, dim=1).amax(dim=1))
    all_mid = _cells(1.0 - torch.softmax(torch.full((1, 2, 2, 2), 0.0) + torch.tensor([2.0, 0.0]).view(1, 2, 1, 1), 1).amax(1))
    top2 = logits.topk(2, dim=1).values
    assert _cells(top2[:, 0] - top2[:, 1]) > 2.0  # mean gap (10 + 3 x 0.1) / 4: looks surer than all_mid's 2.0
    assert few_sure > all_mid  # yet more of its pixels are expected wrong


def test_the_cue_can_be_switched_at_run_time_without_touching_the_weights() -> None:
    model = _model("none")
    x = torch.randn(1, 3, 128, 192)
    with torch.no_grad():
        learned = model.forward_all(x)
        model.selector_cue = "error_rule"
        ruled = model.forward_all(x)
    assert model.config.selector_cue == "none"  # the architecture is unchanged; only the ranking is
    assert not torch.equal(learned.masks, ruled.masks)
    model.selector_cue = "none"
    with torch.no_grad():
        torch.testing.assert_close(model.forward_all(x).logits, learned.logits)
    with pytest.raises(ConfigError, match="unknown selector_cue"):
        model.selector_cue = "entropy"
    paper_decoder = FornetModel(MBV3_V1, num_classes=5)
    with pytest.raises(ConfigError, match="needs the linear decoder"):
        paper_decoder.selector_cue = "error_rule"
    assert paper_decoder.selector_cue == "none"


def test_eval_selector_cue_ranks_by_the_rule_in_eval_mode_and_by_the_learned_score_in_training() -> None:
    model = _model("none")
    model.config = replace(model.config, eval_selector_cue="error_rule")
    x = torch.randn(1, 3, 128, 192)
    assert model.selector_cue == "error_rule"  # eval mode
    with torch.no_grad():
        ruled = model.forward_all(x)
    model.train()
    assert model.selector_cue == "none"
    model.selector_cue = "error_rule"  # a run-time choice holds in both modes ...
    assert model.selector_cue == "error_rule"
    model.selector_cue = None  # ... until it is taken back
    assert model.selector_cue == "none"
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model.forward_all(x).masks, ruled.masks)
        model.selector_cue = "none"
        assert not torch.equal(model.forward_all(x).masks, ruled.masks)
    with pytest.raises(ValueError, match="eval_selector_cue 'error_rule' needs the linear decoder"):
        FornetModel(replace(MBV3_V1, eval_selector_cue="error_rule"))


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


@pytest.mark.parametrize("cue", ["gap", "error_rule"])
def test_onnx_export_with_the_cue_matches_eager_at_other_sizes(tmp_path: Path, cue: str) -> None:
    model = _model(cue)
    meta = meta_for(model, CLASS_NAMES[:5], TRAIN_ID_TO_COLOR[:5].tolist())
    path = tmp_path / "cue.onnx"
    result = export_onnx(model, path, ExportOptions(height=64, width=128), meta=meta)
    assert all(c.passed for c in result.checks)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for h, w in ((96, 160), (160, 96), (97, 151)):  # odd: the grid rounds up
        x = scene_batch(1, h, w, meta, seed=5)
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
        with torch.inference_mode():
            ref = model(x).numpy()
        assert got.shape == ref.shape
        assert np.abs(got - ref).max() < 5e-5 * max(1.0, np.abs(ref).max())  # float32 rounding, relative
        assert (got.argmax(1) == ref.argmax(1)).mean() > 0.999


def test_registered_fornet_mbv3_selects_by_the_rule_in_eval_mode_only_and_its_0_3_design_never() -> None:
    import fornet_cli

    current, earlier = fornet_cli.create_model("fornet_mbv3"), fornet_cli.create_model("fornet_mbv3_v3")
    assert current.eval().selector_cue == "error_rule" and current.train().selector_cue == "none"
    assert earlier.eval().selector_cue == "none"
    # A 0.3 checkpoint's model_config has no eval_selector_cue: it keeps the learned choice.
    old = {k: v for k, v in earlier.config.to_dict().items() if k != "eval_selector_cue"}
    assert FornetModel(type(earlier.config).from_dict(old)).eval().selector_cue == "none"


def test_a_predictor_sets_the_cue_it_is_given_and_leaves_the_model_s_otherwise() -> None:
    from fornet_cli.inference.predictor import InferenceConfig, Predictor

    model = _model("none")
    Predictor(model, InferenceConfig(selector_cue="error_rule"))
    assert model.selector_cue == "error_rule"
    Predictor(model, InferenceConfig())
    assert model.selector_cue == "error_rule"  # None: as the model is
    with pytest.raises(ConfigError, match="Unknown selector cue 'entropy'"):
        InferenceConfig(selector_cue="entropy")
    with pytest.raises(ConfigError, match="has no selector"):
        Predictor(torch.nn.Conv2d(3, 5, 1), InferenceConfig(selector_cue="error_rule"))
