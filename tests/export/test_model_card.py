"""The Hub README's front matter: written by huggingface_hub's ModelCardData, read back by ModelCard."""

from __future__ import annotations

import pytest
import torch
from huggingface_hub import ModelCard

import fornet_cli
from fornet_cli.data.labels import CLASS_NAMES, TRAIN_ID_TO_COLOR
from fornet_cli.export.model_card import model_card
from fornet_cli.weights.format import ModelMeta, meta_for


def _meta(**training: object) -> ModelMeta:
    with torch.device("meta"):  # no weights needed: the card reads the configuration only
        model = fornet_cli.create_model("fornet_mbv3")
    extra = {"training": dict(training)} if training else {}
    return meta_for(model, CLASS_NAMES, TRAIN_ID_TO_COLOR[:19].tolist(), extra=extra)


@pytest.mark.parametrize("data", ["cityscapes", "synth", None])
def test_the_front_matter_parses_with_modelcard(data: str | None) -> None:
    text = model_card(_meta(data=data) if data else _meta(), parameters=1234)
    assert text.startswith("---\nlicense: mit\nlibrary_name: fornet\npipeline_tag: image-segmentation\ntags:\n")
    card = ModelCard(text)
    assert card.data.license == "mit" and card.data.library_name == "fornet"
    assert card.data.pipeline_tag == "image-segmentation"
    assert card.data.tags == ["semantic-segmentation", "fornet", "pytorch", "safetensors"]
    assert card.data.datasets == (["cityscapes"] if data == "cityscapes" else None)
    assert card.text.lstrip().startswith("# fornet_mbv3: FoR-Net semantic segmentation")
    assert str(card) == text


@pytest.mark.parametrize("license", ["yes", "1.0", "cc-by-nc-4.0", "other: see below"])
def test_a_licence_yaml_would_misread_stays_a_string(license: str) -> None:
    card = ModelCard(model_card(_meta(), parameters=1, license=license))
    assert card.data.license == license
