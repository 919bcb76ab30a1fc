"""Whole, sliding-window and TTA inference: shapes, and equality wherever the modes must agree."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import fornet_cli
from fornet_cli.errors import ConfigError
from fornet_cli.inference.predictor import InferenceConfig, Predictor, slide_windows
from fornet_cli.model.outputs import logits_of

C = 5


class Pointwise(nn.Module):
    """A 1x1-conv model: every pixel's logits depend on that pixel only, so any window gives the same."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, C, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Strided(nn.Module):
    """Spatial context and a stride-2 output, upsampled by the predictor: windows matter here."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(8, C, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class DictOutput(nn.Module):
    """torchvision segmentation models return {"out": logits, "aux": ...}."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.inner(x)
        return {"out": out, "aux": out * 0}


class MirrorSymmetric(nn.Module):
    """Kernels symmetric left-right: the model commutes with a horizontal flip."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, C, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.copy_((self.conv.weight + self.conv.weight.flip(-1)) / 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def test_windows_cover_the_image_and_end_flush() -> None:
    wins = slide_windows(37, 53, (16, 24), (10, 13))
    cover = torch.zeros(37, 53)
    for y1, y2, x1, x2 in wins:
        assert (y2 - y1, x2 - x1) == (16, 24)
        cover[y1:y2, x1:x2] += 1
    assert cover.min() >= 1
    assert max(w[1] for w in wins) == 37 and max(w[3] for w in wins) == 53
    cityscapes = slide_windows(1024, 2048, (1024, 1024), (768, 768))
    assert cityscapes == [(0, 1024, 0, 1024), (0, 1024, 768, 1792), (0, 1024, 1024, 2048)]


@pytest.mark.parametrize(
    "size,crop,stride",
    [((37, 53), (16, 24), (10, 13)), ((20, 30), (32, 32), (16, 16)), ((33, 17), (8, 40), (5, 7))],
)
def test_slide_equals_whole_for_a_pointwise_model(size: tuple[int, int], crop: tuple, stride: tuple) -> None:
    model = Pointwise()
    x = torch.randn(2, 3, *size)
    whole = Predictor(model).scores(x)
    for batch in (1, 4):
        cfg = InferenceConfig(mode="slide", crop_size=crop, stride=stride, batch_size=batch)
        slide = Predictor(model, cfg).scores(x)
        assert slide.shape == (2, C, *size)
        torch.testing.assert_close(slide, whole)


def test_one_window_covering_the_image_equals_whole() -> None:
    model = Strided()
    x = torch.randn(2, 3, 24, 40)
    whole = Predictor(model).scores(x)
    slide = Predictor(model, InferenceConfig(mode="slide", crop_size=(24, 40), stride=(7, 9))).scores(x)
    assert torch.equal(slide, whole)
    # with overlapping windows a spatial model gives other logits: the test above is not vacuous
    other = Predictor(model, InferenceConfig(mode="slide", crop_size=(16, 16), stride=(8, 8))).scores(x)
    assert other.shape == whole.shape and not torch.allclose(other, whole)


def test_small_images_are_padded_to_the_crop() -> None:
    model = Strided()
    x = torch.randn(1, 3, 11, 13)
    out = Predictor(model, InferenceConfig(mode="slide", crop_size=(16, 16), stride=(8, 8))).scores(x)
    padded = Predictor(model).scores(F.pad(x, (0, 3, 0, 5)))[..., :11, :13]
    torch.testing.assert_close(out, padded)


def test_flip_tta_of_a_mirror_symmetric_model_equals_its_softmax() -> None:
    model = MirrorSymmetric()
    x = torch.randn(2, 3, 15, 21)
    plain = Predictor(model).probabilities(x)
    flipped = Predictor(model, InferenceConfig(flip=True)).scores(x)
    torch.testing.assert_close(flipped, plain)
    # a model without the symmetry gives different TTA probabilities
    asym = Strided()
    assert not torch.allclose(Predictor(asym, InferenceConfig(flip=True)).scores(x), Predictor(asym).probabilities(x))


@pytest.mark.parametrize("mode", ["whole", "slide"])
def test_multiscale_flip_tta_gives_probabilities_at_input_size(mode: str) -> None:
    cfg = InferenceConfig(mode=mode, crop_size=(12, 12), stride=(8, 8), scales=(0.5, 0.75, 1.25), flip=True)
    assert cfg.num_views == 6
    x = torch.randn(2, 3, 19, 27)
    probs = Predictor(Strided(), cfg).scores(x)
    assert probs.shape == (2, C, 19, 27)
    torch.testing.assert_close(probs.sum(1), torch.ones(2, 19, 27))
    labels = Predictor(Strided(), cfg).predict(x)
    assert labels.shape == (2, 19, 27) and labels.dtype == torch.int64


def test_one_view_gives_logits_and_probabilities_are_their_softmax() -> None:
    model = Strided()
    x = torch.randn(1, 3, 16, 16)
    p = Predictor(model)
    logits = p.scores(x)
    torch.testing.assert_close(p.probabilities(x), logits.softmax(1))
    assert torch.equal(p.predict(x), logits.argmax(1))
    assert torch.equal(p.scores(x[0]), logits)  # a single 3 x H x W image is a batch of one


def test_dict_and_tuple_outputs() -> None:
    inner = Strided()
    x = torch.randn(1, 3, 16, 16)
    expected = Predictor(inner).scores(x)
    torch.testing.assert_close(Predictor(DictOutput(inner)).scores(x), expected)
    out = torch.zeros(1)
    assert logits_of((out, 1)) is out
    with pytest.raises(ConfigError, match="without 'out'"):
        logits_of({"aux": out})


def test_fornet_outputs_and_logits() -> None:
    model = fornet_cli.create_model("fornet_mbv3", num_classes=C)
    x = torch.randn(1, 3, 64, 96)
    p = Predictor(model)
    out = p.fornet_outputs(x)
    assert out.logits.shape == (1, C, 64, 96) and out.masks.shape[:2] == (1, len(model.topk_ratios))
    torch.testing.assert_close(out.logits, p.scores(x))
    with pytest.raises(ConfigError, match="not a FoR-Net model"):
        Predictor(Strided()).fornet_outputs(x)


def test_amp_is_off_on_cpu() -> None:
    model = Strided()
    x = torch.randn(1, 3, 16, 16)
    with_amp = Predictor(model, InferenceConfig(amp=True)).scores(x)
    assert torch.equal(with_amp, Predictor(model, InferenceConfig(amp=False)).scores(x))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_amp_on_cuda_is_close_to_float32() -> None:
    model = Strided().cuda()
    x = torch.randn(2, 3, 64, 64, device="cuda")
    full = Predictor(model, InferenceConfig(amp=False)).scores(x)
    half = Predictor(model, InferenceConfig(amp=True)).scores(x)
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, full, atol=2e-2, rtol=2e-2)
    slide = Predictor(model, InferenceConfig(mode="slide", crop_size=(64, 64), stride=(32, 32))).scores(x)
    torch.testing.assert_close(slide, half)


@pytest.mark.parametrize(
    "bad",
    [{"mode": "tiles"}, {"crop_size": (0, 8)}, {"stride": (4,)}, {"scales": ()}, {"scales": (0.0,)}, {"batch_size": 0}],
)
def test_config_validation(bad: dict) -> None:
    with pytest.raises(ConfigError):
        InferenceConfig(**bad)


def test_images_must_be_float_batches() -> None:
    with pytest.raises(ConfigError, match="B x 3 x H x W"):
        Predictor(Strided()).scores(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ConfigError, match="float"):
        Predictor(Strided()).scores(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
