"""The model a training run optimises: a FoR-Net variant (with the metadata its checkpoints carry) or a
torchvision peer trained the same way for comparisons; moved to its device, memory format and DDP wrapper."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .. import distributed as dist
from ..errors import ConfigError
from ..model import create_model
from ..model.outputs import FornetOutput, logits_of
from ..model.peers import PEERS, build_peer
from ..weights.backbone import backbone_init
from ..weights.format import ModelMeta, meta_for
from .config import TrainConfig

if TYPE_CHECKING:
    from ..data.classes import ClassSet

# What a checkpoint's metadata records of the recipe (the model card shows it).
_SUMMARY_KEYS = ("recipe", "data", "crop", "scale_range", "batch", "iters", "optimizer", "lr", "head_lr_mult",
                 "weight_decay", "warmup_iters", "poly_power", "pretrained", "seed")


def is_peer(config: TrainConfig) -> bool:
    """A torchvision model trained the same way as fornet's, for comparisons (the study)."""
    return config.model in PEERS


def build_model(
    config: TrainConfig, mean: tuple[float, ...], std: tuple[float, ...], *, pretrained: bool,
    classes: ClassSet | None = None,
) -> tuple[nn.Module, ModelMeta | None]:
    """The model and, for FoR-Net variants, the metadata saved with its checkpoints (peers: None): the class
    names and colours of ``classes`` (default: Cityscapes' 19 training classes).

    ``pretrained=False`` skips the ImageNet initialisation (a resumed run loads its own weights).
    """
    from ..data.classes import cityscapes_classes

    classes = classes or cityscapes_classes()
    if classes.num_classes != config.num_classes:
        raise ConfigError(f"The config asks for {config.num_classes} classes but {classes.source} lists "
                          f"{classes.num_classes}; the number of classes follows the classes file.")
    if is_peer(config):
        if config.pretrained or config.topk_ratios is not None:
            raise ConfigError(f"{config.model} is a torchvision peer: it trains from scratch and has no Top-K ratios.")
        model = build_peer(config.model, config.num_classes)
        # torchvision's MobileNetV3 uses BatchNorm momentum 0.01 (for long ImageNet schedules): in a short run
        # its running statistics barely move and eval-mode accuracy collapses (measured: 1.3 % val mIoU after
        # 200 cpu-quick iterations, with a training loss lower than FoR-Net's). Train it like fornet's own
        # models, with PyTorch's default 0.1.
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.momentum = 0.1
        return model, None  # not a FoR-Net checkpoint: --weights cannot load it
    backbone = backbone_init(config.pretrained, config.model) if pretrained else None
    model = create_model(config.model, config.num_classes, pretrained_backbone=backbone, topk_ratios=config.topk_ratios)
    summary = {k: getattr(config, k) for k in _SUMMARY_KEYS}
    return model, meta_for(model, classes.names, classes.palette, mean, std, extra={"training": summary})


class ForwardAll(nn.Module):
    """Makes ``forward`` return FoR-Net's full output, so DDP's hooks see the call. A peer model without a
    selector (torchvision's, for comparisons) gives its logits with no importance and no masks."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> FornetOutput:
        if hasattr(self.model, "forward_all"):
            return self.model.forward_all(x)
        return FornetOutput(logits_of(self.model(x)), None, None)  # type: ignore[arg-type]


def place(model: nn.Module, config: TrainConfig, info: dist.DistInfo) -> tuple[nn.Module, nn.Module, bool]:
    """Move ``model`` to the run's device; returns ``(model, the module a training step calls, channels_last)``.

    The step module returns FoR-Net's full output and is wrapped in DDP under torchrun.
    """
    device = info.device
    if config.sync_bn and info.enabled:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    channels_last = config.channels_last if config.channels_last is not None else device.type == "cuda"
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    step_model: nn.Module = ForwardAll(model)
    if info.enabled:
        unused = any(r == 0 for r in getattr(model, "topk_ratios", ()))  # switched-off branches get no gradient
        ddp_args: dict[str, Any] = {"device_ids": [device.index] if device.type == "cuda" else None}
        step_model = nn.parallel.DistributedDataParallel(step_model, find_unused_parameters=unused, **ddp_args)
    return model, step_model, channels_last
