"""Typed training configuration and the named recipes (``--recipe paper``, ``--recipe cpu-quick``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

from ..errors import ConfigError
from .losses import LossConfig


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on. The run directory keeps it as ``config.json``."""

    model: str = "fornet_mbv3"
    num_classes: int = 19
    topk_ratios: tuple[float, ...] | None = None  # None: the variant's own
    pretrained: bool | str = False  # True: the variant's registered ImageNet weights; or a name / .safetensors
    # data
    data: Literal["cityscapes", "synth"] = "synth"
    root: str | None = None  # cityscapes: $CITYSCAPES_DATASET when None; synth: generated on first use
    synth_train: int = 100  # generated set size when data == "synth" and root is None
    synth_val: int = 20
    synth_size: tuple[int, int] = (256, 512)
    crop: tuple[int, int] = (512, 1024)
    scale_range: tuple[float, float] = (0.5, 2.0)
    workers: int = 2
    val_split: str = "val"
    val_max_images: int | None = None  # evaluate only the first N val images (quick checks)
    # optimisation
    batch: int = 8  # per process
    iters: int = 80_000
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = 1e-4
    head_lr_mult: float = 10.0  # everything outside the backbone learns this much faster
    weight_decay: float = 0.01  # not applied to norms and biases
    momentum: float = 0.9  # SGD only
    warmup_iters: int = 1500
    warmup_start: float = 1e-3  # warm-up starts at lr * warmup_start
    poly_power: float = 1.0
    grad_clip: float = 0.0  # max gradient norm; 0 = off
    loss: LossConfig = field(default_factory=LossConfig)
    # machinery
    device: str = "auto"  # auto | cpu | cuda
    amp: Literal["auto", "off", "bf16", "fp16"] = "auto"  # auto: bf16 on CUDA when supported, off on CPU
    channels_last: bool | None = None  # None: on CUDA only
    sync_bn: bool = False
    seed: int = 0
    deterministic: bool = False
    log_every: int = 20
    val_every: int = 4000
    ckpt_every: int = 1000
    recipe: str | None = None

    def __post_init__(self) -> None:
        for name in ("batch", "iters", "log_every", "val_every", "ckpt_every", "num_classes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1 (got {getattr(self, name)}).")
        if self.lr <= 0 or self.weight_decay < 0 or self.grad_clip < 0 or self.warmup_iters < 0:
            raise ConfigError("lr must be positive; weight_decay, grad_clip and warmup_iters not negative.")
        if self.optimizer not in ("adamw", "sgd"):
            raise ConfigError(f"optimizer must be adamw or sgd, not {self.optimizer!r}.")
        if self.amp not in ("auto", "off", "bf16", "fp16"):
            raise ConfigError(f"amp must be auto, off, bf16 or fp16, not {self.amp!r}.")
        if self.data not in ("cityscapes", "synth"):
            raise ConfigError(f"data must be cityscapes or synth, not {self.data!r}.")
        if min(self.crop) < 16:
            raise ConfigError(f"crop {self.crop} is too small; use at least 16 x 16 pixels.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if isinstance(values.get("loss"), dict):
            values["loss"] = LossConfig(**values["loss"])
        for key in ("topk_ratios", "synth_size", "crop", "scale_range"):
            if isinstance(values.get(key), list):
                values[key] = tuple(values[key])
        return cls(**values)

    def with_overrides(self, **changes: Any) -> TrainConfig:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


RECIPES: dict[str, TrainConfig] = {
    # The paper's setting (DESIGN.md section 1): FoR-Net R101, AdamW, 768x768 crops, random scale/crop/flip,
    # output stride 8. The paper leaves lr, batch, iterations and schedule open; these are our documented
    # choices, in line with common Cityscapes practice for 8 GPUs x 1 image or 4 x 2.
    "paper": TrainConfig(
        model="fornet_r101",
        pretrained=True,
        data="cityscapes",
        crop=(768, 768),
        scale_range=(0.5, 2.0),
        batch=2,  # per GPU; 8 GPUs x 2 = 16 images per step
        iters=80_000,
        optimizer="adamw",
        lr=1e-4,
        head_lr_mult=10.0,
        weight_decay=0.01,
        warmup_iters=1500,
        poly_power=1.0,
        grad_clip=0.0,
        val_every=8000,
        ckpt_every=2000,
        workers=4,
        recipe="paper",
    ),
    # Ours: learns visibly in a few minutes on 2 CPU cores, from scratch (no download needed).
    "cpu-quick": TrainConfig(
        model="fornet_mbv3",
        pretrained=False,
        data="synth",
        synth_train=100,
        synth_val=20,
        synth_size=(256, 512),
        crop=(256, 256),
        scale_range=(0.75, 1.5),
        batch=8,
        iters=420,
        optimizer="adamw",
        lr=2e-3,
        head_lr_mult=1.0,
        weight_decay=0.01,
        warmup_iters=30,
        poly_power=1.0,
        grad_clip=5.0,
        val_every=60,
        ckpt_every=60,
        log_every=10,
        workers=0,  # on 2 cores a loader process slows training down (measured: 0.86 vs 1.04 it/s)
        recipe="cpu-quick",
    ),
}


def recipe(name: str) -> TrainConfig:
    try:
        return RECIPES[name]
    except KeyError:
        raise ConfigError(f"Unknown recipe {name!r}; choose one of {', '.join(RECIPES)}.") from None
