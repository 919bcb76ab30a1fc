import pytest
import torch
from torchvision import tv_tensors

from fornet_cli.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    RandomScale,
    TransformSettings,
    denormalize,
    eval_transforms,
    train_transforms,
)
from fornet_cli.errors import ConfigError


def _sample(h: int = 40, w: int = 60) -> dict:
    """An image whose red channel encodes the class of each pixel, so alignment can be checked after warping."""
    g = torch.Generator().manual_seed(0)
    classes = torch.tensor([0, 5, 18, 255], dtype=torch.uint8)
    mask = classes[torch.randint(0, 4, (h // 4, w // 4), generator=g)].repeat_interleave(4, 0).repeat_interleave(4, 1)
    image = torch.stack([mask, torch.full_like(mask, 100), torch.full_like(mask, 50)])
    return {"image": tv_tensors.Image(image), "mask": tv_tensors.Mask(mask), "name": "x", "path": "/x.png"}


def test_train_transforms_output_types_sizes_and_values() -> None:
    settings = TransformSettings(crop_size=(32, 48), scale_range=(0.5, 2.0))
    tf = train_transforms(settings)
    for _ in range(10):
        out = tf(_sample())
        assert out["image"].shape == (3, 32, 48) and out["image"].dtype == torch.float32
        assert out["mask"].shape == (32, 48) and out["mask"].dtype == torch.int64
        assert set(out["mask"].unique().tolist()) <= {0, 5, 18, 255}  # nearest neighbour: no blended ids
        assert out["name"] == "x" and out["path"] == "/x.png"


def test_geometry_keeps_image_and_mask_aligned() -> None:
    # no photometric change: the red channel must still equal the mask after scale, crop and flip
    settings = TransformSettings(
        crop_size=(24, 36),
        scale_range=(1.0, 3.0),
        hflip_prob=0.5,
        brightness=0,
        contrast=0,
        saturation=0,
        hue=0,
        mean=(0, 0, 0),
        std=(1, 1, 1),
    )
    tf = train_transforms(settings)
    flips = set()
    for _ in range(20):
        out = tf(_sample())
        red, mask = (out["image"][0] * 255).round().long(), out["mask"]
        # bilinear blending only touches pixels near a class edge: away from edges both must agree exactly
        interior = torch.ones_like(mask, dtype=torch.bool)
        for dy in (-2, 0, 2):
            for dx in (-2, 0, 2):
                interior &= mask == torch.roll(mask, (dy, dx), (0, 1))
        interior[:2], interior[-2:], interior[:, :2], interior[:, -2:] = False, False, False, False
        assert interior.sum() > 30
        assert torch.equal(red[interior], mask[interior])
        flips.add(torch.equal(red[interior], mask.flip(-1)[interior]))
    assert flips == {False}  # the check above would catch a mask flipped without its image


def test_padding_uses_zero_for_the_image_and_255_for_the_mask() -> None:
    settings = TransformSettings(
        crop_size=(64, 80), scale_range=(1.0, 1.0), hflip_prob=0.0, brightness=0, contrast=0, saturation=0, hue=0
    )
    sample = _sample(40, 60)
    sample["mask"] = tv_tensors.Mask(torch.full((40, 60), 7, dtype=torch.uint8))
    out = train_transforms(settings)(sample)
    padded = out["mask"] == 255
    assert padded.sum() == 64 * 80 - 40 * 60 and (out["mask"][~padded] == 7).all()
    black = torch.tensor([-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)])
    assert torch.allclose(out["image"][:, padded], black[:, None].expand(3, int(padded.sum())), atol=1e-5)


def test_random_scale_range() -> None:
    sizes = {tuple(RandomScale((0.5, 2.0))(_sample(40, 60))["mask"].shape) for _ in range(30)}
    heights = [h for h, _ in sizes]
    assert min(heights) >= 20 and max(heights) <= 80 and len(sizes) > 5
    assert all(abs(w / h - 1.5) < 0.1 for h, w in sizes)


def test_instance_ids_follow_the_geometry() -> None:
    sample = _sample()
    sample["instance_ids"] = tv_tensors.Mask(sample["mask"].to(torch.int32) * 1000 + 1)
    out = train_transforms(TransformSettings(crop_size=(32, 48)))(sample)
    inst, mask = out["instance_ids"], out["mask"]
    assert inst.shape == mask.shape
    valid = mask != 255
    assert torch.equal(inst[valid] // 1000, mask[valid])


def test_eval_transforms_keep_full_resolution() -> None:
    sample = _sample(40, 60)
    out = eval_transforms()(sample)
    assert out["image"].shape == (3, 40, 60) and torch.equal(out["mask"], sample["mask"].long())
    back = denormalize(out["image"])
    assert torch.equal(back, sample["image"].as_subclass(torch.Tensor))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"crop_size": (0, 10)},
        {"scale_range": (2.0, 1.0)},
        {"scale_range": (0.0, 1.0)},
        {"hflip_prob": 1.5},
        {"brightness": -1},
        {"hue": 0.7},
        {"std": (1, 0, 1)},
        {"mean": (0.5, 0.5)},
    ],
)
def test_bad_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        TransformSettings(**kwargs)
