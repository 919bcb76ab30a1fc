"""torchvision's MobileNetV3-Large backbone: timm's ImageNet weights load into it, features identical."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

from fornet_cli.errors import WeightsError
from fornet_cli.model.backbone import Backbone


def test_timm_weights_give_torchvision_the_same_features(tmp_path: Path) -> None:
    torch.manual_seed(0)
    full = timm.create_model("mobilenetv3_large_100")  # a whole ImageNet model file, classifier included
    for m in full.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    path = tmp_path / "in1k.safetensors"
    save_file({k: v.contiguous() for k, v in full.state_dict().items()}, str(path))
    timm_backbone = Backbone("mobilenetv3_large_100", 32, (2, 3, 4), pretrained=path).eval()
    tv_backbone = Backbone("tv_mobilenet_v3_large", 32, (2, 3, 4), pretrained=path).eval()
    for m in tv_backbone.modules():  # torchvision's eps is 1e-3, timm's 1e-5: compare like with like
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eps = 1e-5
    x = torch.randn(1, 3, 96, 160)
    with torch.no_grad():
        for a, b in zip(timm_backbone(x), tv_backbone(x), strict=True):
            assert torch.equal(a, b)


def test_other_weights_are_refused_with_a_message(tmp_path: Path) -> None:
    path = tmp_path / "r18.safetensors"
    save_file({k: v.contiguous() for k, v in timm.create_model("resnet18").state_dict().items()}, str(path))
    with pytest.raises(WeightsError, match="does not hold timm's mobilenetv3_large_100 weights"):
        Backbone("tv_mobilenet_v3_large", 32, (2, 3, 4), pretrained=path)
