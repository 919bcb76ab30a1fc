"""Checks that run over every registered variant: a test with a ``variant`` argument runs once per name in
``fornet_cli.list_models()`` (tests/variant_params.py), so a newly registered variant is covered too."""

from __future__ import annotations

import pytest
import torch
from variant_params import SLOW_ABOVE_PARAMETERS, parametrize_variants, variant_params

import fornet_cli
from fornet_cli.errors import UnknownModelError
from fornet_cli.model import FornetConfig, FornetModel

VARIANTS = fornet_cli.list_models()


@pytest.fixture
def model(variant: str) -> FornetModel:
    """A fresh model of the variant for each test (5 classes, seed 0): tests may change it freely."""
    torch.manual_seed(0)
    return fornet_cli.create_model(variant, num_classes=5)


def test_registry_has_paper_model_and_our_variants() -> None:
    assert VARIANTS[0] == "fornet_r101"
    assert {"fornet_r50", "fornet_r18", "fornet_mbv3"} <= set(VARIANTS)


def test_paper_model_has_exact_parameter_count() -> None:
    model = fornet_cli.create_model("fornet_r101", num_classes=19)
    backbone = sum(p.numel() for p in model.backbone.parameters())
    total = sum(p.numel() for p in model.parameters())
    assert (total, backbone, total - backbone) == (50_168_948, 42_500_160, 7_668_788)


def test_paper_model_matches_design() -> None:
    model = fornet_cli.create_model("fornet_r101")
    assert model.topk_ratios == (0.1, 0.2, 0.3, 0.4)
    assert model.stride == 8 and model.backbone.strides == [4, 8]
    assert model.backbone.channels == [256, 2048] and model.lateral is None
    kd = [(b[0].kernel_size[0], b[0].dilation[0], b[0].padding[0]) for b in model.branches]
    assert kd == [(1, 1, 0), (3, 1, 1), (5, 1, 2), (7, 16, 48)]
    convs = [m for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d) and not n.startswith("backbone")]
    with_bias = {n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d) and m.bias is not None}
    assert with_bias == {"selector.score", "context.psi.0", "context.psi.2", "decoder.classifier"}
    assert len(convs) == 13  # transition 1, selector 2, context 2, branches 4, decoder 4


@pytest.mark.parametrize("size", [(67, 93), (64, 64), (33, 129)])
def test_output_shapes_at_odd_sizes(model: FornetModel, size: tuple[int, int]) -> None:
    model.eval()
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        out = model.forward_all(x)
        logits = model(x)
    h = -(-size[0] // model.stride)  # ceil: convs with padding round up
    w = -(-size[1] // model.stride)
    assert out.logits.shape == (2, 5, *size)
    assert out.importance.shape == (2, 1, h, w)
    assert out.importance.dtype == torch.float32
    assert out.masks.shape == (2, 4, h, w)
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.importance).all()
    assert torch.equal(logits, out.logits)


def test_every_parameter_receives_a_gradient(model: FornetModel) -> None:
    model.train()
    # timm zero-initialises the last BatchNorm of each residual block, which makes the gradients of the
    # layers before it exactly zero at initialisation; give every norm a non-zero scale first.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
    x = torch.randn(2, 3, 64, 96)
    target = torch.randint(0, 5, (2, 64, 96))
    model.zero_grad(set_to_none=True)
    out = model.forward_all(x)
    loss = torch.nn.functional.cross_entropy(out.logits, target)
    if out.aux is not None:  # the auxiliary classifier learns from its own loss term only
        aux = torch.nn.functional.interpolate(out.aux, size=x.shape[-2:], mode="bilinear")
        loss = loss + torch.nn.functional.cross_entropy(aux, target)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == [], f"parameters without gradient: {missing}"


def test_masks_have_exact_k_and_are_nested(model: FornetModel) -> None:
    model.eval()
    with torch.no_grad():
        out = model.forward_all(torch.randn(2, 3, 96, 160))
    n = out.masks.shape[-2] * out.masks.shape[-1]
    for i, r in enumerate(model.topk_ratios):
        k = min(n, max(1, round(r * n)))
        assert out.masks[:, i].flatten(1).sum(1).tolist() == [k, k]
    assert torch.all(out.masks[:, :-1] <= out.masks[:, 1:])


def test_ratio_zero_turns_branches_off_and_one_selects_everything(model: FornetModel) -> None:
    model.eval()
    x = torch.randn(1, 3, 64, 64)
    model.topk_ratios = 0
    with torch.no_grad():
        off = model.forward_all(x)
        for p in model.branches.parameters():
            p.add_(1.0)  # branches that are off cannot change the output
        off_changed = model(x)
    assert off.masks.sum() == 0
    assert torch.equal(off.logits, off_changed)
    model.topk_ratios = 1
    with torch.no_grad():
        dense = model.forward_all(x)
    assert torch.all(dense.masks == 1)
    assert not torch.allclose(dense.logits, off.logits)


def test_eval_mode_is_deterministic(model: FornetModel) -> None:
    model.eval()
    x = torch.randn(1, 3, 80, 112)
    with torch.no_grad():
        a, b = model.forward_all(x), model.forward_all(x)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.masks, b.masks)


def test_selector_stays_float32_under_autocast(model: FornetModel) -> None:
    model.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model.forward_all(torch.randn(1, 3, 64, 64))
    assert out.importance.dtype == torch.float32


def test_topk_ratios_override_at_creation() -> None:
    model = fornet_cli.create_model("fornet_mbv3", topk_ratios=(0.05, 0.1, 0.5, 1.0))
    assert model.topk_ratios == (0.05, 0.1, 0.5, 1.0)


def test_unknown_model_lists_close_matches() -> None:
    with pytest.raises(UnknownModelError, match="fornet_r101") as info:
        fornet_cli.create_model("fornet_r110")
    assert "Did you mean" in str(info.value) and "fornet models" in str(info.value)


def test_backbone_loads_imagenet_weights_from_a_timm_safetensors_file(variant: str, tmp_path) -> None:
    name = variant
    import timm
    from safetensors.torch import save_file

    from fornet_cli.errors import WeightsError

    backbone = fornet_cli.model.get_entry(name).config.backbone
    if not timm.is_model(backbone):  # torchvision's MobileNetV3 takes timm's weights (tests/model/test_backbone.py)
        reference = timm.create_model("mobilenetv3_large_100")
        save_file(reference.state_dict(), str(tmp_path / "in1k.safetensors"))
        model = fornet_cli.create_model(name, pretrained_backbone=tmp_path / "in1k.safetensors")
        first = next(iter(model.backbone.body.state_dict().values()))
        assert torch.equal(first, reference.conv_stem.weight)
        save_file({"w": torch.zeros(1)}, str(tmp_path / "bad.safetensors"))
        with pytest.raises(WeightsError, match="does not hold timm's"):
            fornet_cli.create_model(name, pretrained_backbone=tmp_path / "bad.safetensors")
        return
    reference = timm.create_model(backbone)  # a full classifier, as published on the Hub
    save_file(reference.state_dict(), str(tmp_path / "in1k.safetensors"))
    model = fornet_cli.create_model(name, pretrained_backbone=tmp_path / "in1k.safetensors")
    ref_state = reference.state_dict()
    loaded = {k: v for k, v in model.backbone.body.state_dict().items() if k in ref_state}
    assert len(loaded) > 50 and all(torch.equal(v, ref_state[k]) for k, v in loaded.items())
    bad = dict(ref_state)
    first = next(iter(bad))
    bad[first] = torch.zeros(1)
    save_file(bad, str(tmp_path / "bad.safetensors"))
    with pytest.raises(WeightsError, match="size mismatch"):
        fornet_cli.create_model(name, pretrained_backbone=tmp_path / "bad.safetensors")
    (tmp_path / "in1k.pth").write_bytes(b"pickled")
    with pytest.raises(WeightsError, match="not a .safetensors file"):
        fornet_cli.create_model(name, pretrained_backbone=tmp_path / "in1k.pth")


def test_a_model_converted_to_bfloat16_as_a_whole_still_runs() -> None:
    model = fornet_cli.create_model("fornet_mbv3", num_classes=3).eval().to(torch.bfloat16)
    with torch.no_grad():
        out = model.forward_all(torch.randn(1, 3, 64, 64, dtype=torch.bfloat16))
    assert out.logits.dtype == torch.bfloat16 and out.masks.shape == (1, 4, 4, 4)


TINY = FornetConfig(backbone="mobilenetv3_small_050", output_stride=32, low_index=2, mid_index=3, channels=32,
                    branch_dilations=(1, 1, 1, 8), separable_branches=True, low_channels=16, decoder="light")


class _Metafunc:
    """What parametrize_variants uses of pytest's Metafunc."""

    def __init__(self, fixturenames: list[str]) -> None:
        self.fixturenames = fixturenames
        self.calls: list[tuple[str, list]] = []

    def parametrize(self, argnames: str, argvalues: list) -> None:
        self.calls.append((argnames, argvalues))


def test_a_newly_registered_variant_is_covered_by_every_per_variant_test(monkeypatch: pytest.MonkeyPatch) -> None:
    from fornet_cli.model import registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # undone after the test
    fornet_cli.register_model("fornet_test_tiny", TINY)
    metafunc = _Metafunc(["model", "variant", "tmp_path"])
    parametrize_variants(metafunc)
    [(argname, params)] = metafunc.calls
    assert argname == "variant"
    assert [p.values[0] for p in params] == [*VARIANTS, "fornet_test_tiny"]
    assert not [m for p in params if p.values[0] == "fornet_test_tiny" for m in p.marks]
    untouched = _Metafunc(["model", "tmp_path"])
    parametrize_variants(untouched)
    assert untouched.calls == []


def test_large_variants_are_marked_slow_and_small_ones_are_not() -> None:
    slow = {p.values[0] for p in variant_params() if any(m.name == "slow" for m in p.marks)}
    assert {"fornet_r101", "fornet_r50"} <= slow and not {"fornet_r18", "fornet_mbv3"} & slow
    with torch.device("meta"):
        sizes = {n: sum(p.numel() for p in fornet_cli.create_model(n).parameters()) for n in VARIANTS}
    assert slow == {n for n, size in sizes.items() if size > SLOW_ABOVE_PARAMETERS}
