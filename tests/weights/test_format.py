"""The published format (``model.safetensors`` + ``config.json``): every registered variant saves and loads back
(strictly) to a model with the same weights, buffers and outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import fornet_cli
from fornet_cli.data.labels import CLASS_NAMES, TRAIN_ID_TO_COLOR
from fornet_cli.errors import WeightsError
from fornet_cli.weights.format import CONFIG_NAME, WEIGHTS_NAME, load_pretrained, meta_for, save_pretrained


def _trained_looking(name: str) -> fornet_cli.FornetModel:
    """A variant whose BatchNorm statistics and Top-K ratios differ from a fresh model's: a loader that dropped
    buffers or ratios would then give other outputs, not the same ones by chance."""
    torch.manual_seed(0)
    model = fornet_cli.create_model(name, topk_ratios=(0.05, 0.15, 0.25, 0.5)).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return model


def _save(model: fornet_cli.FornetModel, folder: Path) -> Path:
    return save_pretrained(model, folder, meta_for(model, CLASS_NAMES, TRAIN_ID_TO_COLOR[:19].tolist()))


def test_every_variant_round_trips_through_the_published_format(variant: str, tmp_path: Path) -> None:
    model = _trained_looking(variant)
    _save(model, tmp_path)
    loaded, meta = load_pretrained(tmp_path)
    assert meta.architecture == variant and meta.model_config == json.loads(json.dumps(model.config.to_dict()))
    assert loaded.topk_ratios == model.topk_ratios == (0.05, 0.15, 0.25, 0.5)
    assert not loaded.training
    ours, theirs = model.state_dict(), loaded.state_dict()
    assert list(ours) == list(theirs)
    assert [k for k in ours if not torch.equal(ours[k], theirs[k])] == []
    x = torch.randn(2, 3, 64, 128)
    with torch.inference_mode():
        expected, got = model.forward_all(x), loaded.forward_all(x)
    assert torch.equal(got.logits, expected.logits) and torch.equal(got.masks, expected.masks)


def test_loading_is_strict_a_missing_or_extra_tensor_is_refused(tmp_path: Path) -> None:
    _save(_trained_looking("fornet_mbv3"), tmp_path)
    state = load_file(str(tmp_path / WEIGHTS_NAME))
    first = next(iter(state))
    save_file({k: v for k, v in state.items() if k != first}, str(tmp_path / WEIGHTS_NAME))
    with pytest.raises(WeightsError, match=rf"1 missing \(e\.g\. {first}\)"):
        load_pretrained(tmp_path)
    save_file({**state, "extra.weight": torch.zeros(1)}, str(tmp_path / WEIGHTS_NAME))
    with pytest.raises(WeightsError, match=r"1 unexpected \(e\.g\. extra\.weight\)"):
        load_pretrained(tmp_path)


def test_a_folder_without_its_config_is_refused(tmp_path: Path) -> None:
    _save(fornet_cli.create_model("fornet_mbv3"), tmp_path)
    (tmp_path / CONFIG_NAME).unlink()
    with pytest.raises(WeightsError, match=f"{CONFIG_NAME} is missing"):
        load_pretrained(tmp_path)


def test_first_design_weights_under_the_redesigned_name_are_refused_naming_the_change(tmp_path: Path) -> None:
    """A file that calls itself fornet_mbv3 without describing its architecture (model_config) and holds the
    first design's tensors: the error says the variant was redesigned and which name loads it."""
    old = fornet_cli.create_model("fornet_mbv3_v1")
    meta = meta_for(old, CLASS_NAMES, TRAIN_ID_TO_COLOR[:19].tolist())
    _save(old, tmp_path)
    config = json.loads((tmp_path / CONFIG_NAME).read_text())
    config.update(architecture="fornet_mbv3", model_config={})
    (tmp_path / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(WeightsError, match=r"fornet_mbv3 was redesigned.*load as fornet_mbv3_v1 \(fornet 0\.1\)"):
        load_pretrained(tmp_path)
    config["architecture"] = "fornet_mbv3_v1"  # what the message says to do
    (tmp_path / CONFIG_NAME).write_text(json.dumps(config))
    loaded, _ = load_pretrained(tmp_path)
    assert loaded.config == old.config and meta.model_config == old.config.to_dict()


def test_weights_that_fit_two_designs_without_a_model_config_are_refused(tmp_path: Path) -> None:
    """fornet_mbv3 0.2, 0.3 and 0.4 have the same tensors and compute different things: a file that only names
    fornet_mbv3 must not load into the current design silently. Naming the design loads it; so does the
    model_config that fornet writes."""
    old = _trained_looking("fornet_mbv3_v2")
    _save(old, tmp_path)
    config = json.loads((tmp_path / CONFIG_NAME).read_text())
    config.update(architecture="fornet_mbv3", model_config={})
    (tmp_path / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(WeightsError, match="fit fornet_mbv3_v2 and fornet_mbv3_v3 as well.*fornet_mbv3_v2 \\(fornet 0.2\\)"):
        load_pretrained(tmp_path)
    config["architecture"] = "fornet_mbv3_v2"  # what the message says to do
    (tmp_path / CONFIG_NAME).write_text(json.dumps(config))
    loaded, _ = load_pretrained(tmp_path)
    assert loaded.config == old.config and not loaded.config.mask_branch_output
    x = torch.randn(1, 3, 64, 128)
    torch.testing.assert_close(loaded.eval()(x), old(x))
    config.update(architecture="fornet_mbv3", model_config=fornet_cli.create_model("fornet_mbv3").config.to_dict())
    (tmp_path / CONFIG_NAME).write_text(json.dumps(config))
    current, _ = load_pretrained(tmp_path)  # the same tensors, read as the current design because the file says so
    assert current.config.mask_branch_output and current.config.residual_branches


def test_a_first_design_checkpoint_rebuilds_its_own_architecture(tmp_path: Path) -> None:
    """Files written by fornet 0.1 describe their model (model_config): they keep loading, as the first design."""
    old = fornet_cli.create_model("fornet_mbv3_v1")
    meta = meta_for(old, CLASS_NAMES, TRAIN_ID_TO_COLOR[:19].tolist())
    save_pretrained(old, tmp_path, meta)
    config = json.loads((tmp_path / CONFIG_NAME).read_text())
    config["architecture"] = "fornet_mbv3"  # as 0.1 named it
    (tmp_path / CONFIG_NAME).write_text(json.dumps(config))
    loaded, _ = load_pretrained(tmp_path)
    assert loaded.config.decoder == "light" and loaded.config.backbone == "mobilenetv3_large_100"
