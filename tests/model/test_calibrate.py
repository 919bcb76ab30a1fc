"""calibrate_batchnorm: a random model's BatchNorm statistics from a few batches, so that its selector ranks."""

from __future__ import annotations

import torch

import fornet_cli
from fornet_cli.model.calibrate import calibrate_batchnorm


def test_calibration_gives_a_random_fornet_mbv3_a_selector_that_ranks() -> None:
    torch.manual_seed(0)
    model = fornet_cli.create_model("fornet_mbv3").eval()
    model.selector_cue = "none"  # the learned selector's own score (in eval mode fornet_mbv3 ranks by a rule)
    x = torch.randn(1, 3, 64, 128)
    with torch.inference_mode():
        before = model.forward_all(x).importance.std().item()
    calibrate_batchnorm(model, size=(64, 128))
    with torch.inference_mode():
        after = model.forward_all(x).importance.std().item()
    # fresh statistics (mean 0, variance 1) shrink torchvision's MobileNetV3 activations to nothing
    assert before < 1e-5 < 1e-3 < after
    assert not model.training
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert {m.momentum for m in norms} == {0.1} and all(m.num_batches_tracked.item() == 2 for m in norms)
