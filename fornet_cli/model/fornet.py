"""The FoR-Net model: backbone, importance selector, Top-K multi-scale head, DeepLabV3+-style decoder.

Shapes (paper configuration, input B x 3 x H x W):
    low  = B x 256 x H/4 x W/4            (ResNet layer1)
    high = B x 2048 x H/8 x W/8           (ResNet layer4, dilated to output stride 8)
    F    = B x C x h x w                  (transition, C = 256, h x w = the feature grid)
    z    = B x 1 x h x w                  (importance logit; S = sigmoid(z))
    M    = B x 4 x h x w                  (nested Top-K masks, ratios 0.1 / 0.2 / 0.3 / 0.4)
    logits = B x num_classes x H x W
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .backbone import Backbone
from .layers import ConvBNReLU, conv_block
from .outputs import FocusContext, FornetOutput
from .topk import normalize_ratios, straight_through, topk_masks

PAPER_RATIOS = (0.1, 0.2, 0.3, 0.4)


@dataclass(frozen=True)
class FornetConfig:
    """Everything that distinguishes one variant from another. Variants are data, not subclasses."""

    backbone: str
    output_stride: int = 8
    low_index: int = 1  # timm feature index of the decoder's skip connection
    high_index: int = 4  # timm feature index of the head's input (4: the last of timm's ResNets/MobileNets)
    # Optional top-down neck: the head runs on the grid of this feature index, fed by
    # lateral(mid) + upsampled transition(high), so an undilated backbone can feed a finer head.
    mid_index: int | None = None
    channels: int = 256  # C
    topk_ratios: tuple[float, ...] = PAPER_RATIOS
    branch_kernels: tuple[int, ...] = (1, 3, 5, 7)
    branch_dilations: tuple[int, ...] = (1, 1, 1, 16)
    separable_branches: bool = False
    low_channels: int = 48
    # "deeplabv3plus": concat with the projected skip, two 3x3 convs (the paper); "light": one depthwise-
    # separable 3x3 fuse conv; "linear": LRASPP's, a 1x1 classifier on each of the two features, summed.
    decoder: str = "deeplabv3plus"
    # Branches end in a BatchNorm without ReLU whose scale starts at 0, so that F_agg = F at the start (the
    # residual-branch initialisation of ResNets; a zero BatchNorm before a ReLU would never learn).
    residual_branches: bool = False
    # Each branch's output counts only at its own selected positions (ours). The paper adds the whole output,
    # so a branch also changes the positions around its selection (a 7x7 kernel dilated by 16 reaches far).
    mask_branch_output: bool = False
    # A 1x1 classifier on the head's feature before the branches (ours): deep supervision, and the prediction
    # whose errors can teach the selector (``FornetOutput.aux``). Not used for the model's own logits.
    aux_classifier: bool = False
    # What the selector sees besides the feature (ours). "gap": the decoder runs once with the branches off,
    # and minus the gap between its two highest logits (small = unsure), pooled to the grid and detached, is
    # added to the learned score z. With mask_branch_output, that first pass is the model's own prediction
    # outside the masks, so the cue says where the final prediction is unsure. "gap_rule": the cue alone ranks
    # the cells; the learned score, scaled by RULE_TIEBREAK, only breaks ties (and is still trained).
    # "error_rule": as "gap_rule", with the first pass's expected share of wrong pixels per cell (the mean of
    # 1 - its highest softmax probability) as the cue, in logit space: importance = that share. A cell's
    # count of wrong pixels is what a selection is judged by; a mean gap lets a few very sure pixels hide
    # many unsure ones. The cue can also be switched at run time (``FornetModel.selector_cue``).
    selector_cue: str = "none"
    # The cue in eval mode (ours; None: ``selector_cue``). A model can learn its branches on the cells its
    # learned selector picks (training) and refine, at inference, the cells where its first pass expects the
    # most errors ("error_rule"), which finds more of them (docs/STUDY.md section 4).
    eval_selector_cue: str | None = None
    # BatchNorm eps of the backbone (None: the library's; torchvision's MobileNetV3 uses 1e-3, timm's 1e-5).
    backbone_bn_eps: float | None = None
    description: str = ""
    paper: bool = False  # True only for the configuration the paper defines

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FornetConfig:
        """The config of ``to_dict()``; unknown fields are refused (a config from a newer fornet, or edited)."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise TypeError(f"unknown model_config fields {unknown} (written by a newer fornet?)")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


class Selector(nn.Module):
    """3x3 ConvBNReLU C -> C/2, then a 1x1 conv (bias) to the importance logit z."""

    def __init__(self, channels: int, separable: bool = False) -> None:
        super().__init__()
        self.conv = conv_block(channels, channels // 2, 3, separable=separable)
        self.score = nn.Conv2d(channels // 2, 1, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # float32 even under autocast: half precision creates ties that make Top-K arbitrary. The input
        # follows the selector's own weights, so a model converted with .half() as a whole still runs.
        device = x.device.type
        # The meta device (used to count MACs) has no autocast.
        no_autocast = torch.autocast(device, enabled=False) if torch.amp.is_autocast_available(device) else nullcontext()
        with no_autocast:
            return self.score(self.conv(x.to(self.score.weight.dtype)))


class GlobalContext(nn.Module):
    """``F + psi(GAP(F))`` with psi = 1x1 conv C -> C/4, ReLU, 1x1 conv C/4 -> C (both with bias)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.psi = nn.Sequential(
            nn.Conv2d(channels, channels // 4, 1), nn.ReLU(inplace=True), nn.Conv2d(channels // 4, channels, 1)
        )

    def forward(self, x: torch.Tensor, pooled: torch.Tensor | None = None) -> torch.Tensor:
        """``pooled``: the GAP to use instead of ``x``'s own (a focus tile takes its image's)."""
        return x + self.psi(x.mean(dim=(2, 3), keepdim=True) if pooled is None else pooled.to(x.dtype))


DECODERS: tuple[str, ...] = ("deeplabv3plus", "light", "linear")
SELECTOR_CUES: tuple[str, ...] = ("none", "gap", "gap_rule", "error_rule")
RULE_TIEBREAK = 0.01
ERROR_CUE_EPS = 1e-4  # "error_rule": shares clamped to [eps, 1 - eps] before the logit (finite z)


def selector_cue_problem(config: FornetConfig, cue: str | None = None) -> str | None:
    """What is wrong with ``cue`` (default: the config's ``selector_cue`` and ``eval_selector_cue``) for a
    model of ``config``, or None (checked by the model, its run-time setter and the weights loader)."""
    cues = [("selector_cue", cue)] if cue is not None else [("selector_cue", config.selector_cue)]
    if cue is None and config.eval_selector_cue is not None:
        cues.append(("eval_selector_cue", config.eval_selector_cue))
    for field, value in cues:
        if value not in SELECTOR_CUES:
            return f"unknown {field} {value!r}; expected one of {SELECTOR_CUES}"
        if value != "none" and config.decoder != "linear":
            # The cue runs the decoder a second time; a decoder with BatchNorm would count its statistics twice.
            return f"{field} {value!r} needs the linear decoder, not {config.decoder!r}"
    return None


def top2_gap(logits: torch.Tensor, dim: int) -> torch.Tensor:
    """The gap between the two highest logits along ``dim`` (kept as a size-1 dim), in float32: small = unsure."""
    top2 = logits.float().topk(2, dim=dim).values
    return top2.narrow(dim, 0, 1) - top2.narrow(dim, 1, 1)


class LinearDecoder(nn.Module):
    """LRASPP's decoder: a 1x1 classifier on the head's feature, upsampled to the skip's grid, plus a 1x1
    classifier on the skip feature. (Classifying before upsampling equals torchvision's order, cheaper.)"""

    def __init__(self, channels: int, low_in: int, num_classes: int) -> None:
        super().__init__()
        self.high = nn.Conv2d(channels, num_classes, 1, bias=True)
        self.low = nn.Conv2d(low_in, num_classes, 1, bias=True)

    def forward(self, feat: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        high = F.interpolate(self.high(feat), size=low.shape[-2:], mode="bilinear", align_corners=False)
        return high + self.low(low)


class Decoder(nn.Module):
    """DeepLabV3+-style fusion of the head's output with the low-level skip feature."""

    def __init__(self, channels: int, low_in: int, low_channels: int, num_classes: int, kind: str) -> None:
        super().__init__()
        self.low = ConvBNReLU(low_in, low_channels, 1)
        if kind == "deeplabv3plus":
            self.fuse = nn.Sequential(
                ConvBNReLU(channels + low_channels, channels, 3), ConvBNReLU(channels, channels, 3)
            )
        elif kind == "light":
            self.fuse = conv_block(channels + low_channels, channels, 3, separable=True)
        else:
            raise ValueError(f"unknown decoder {kind!r}")
        self.classifier = nn.Conv2d(channels, num_classes, 1, bias=True)

    def forward(self, feat: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        low = self.low(low)
        feat = F.interpolate(feat, size=low.shape[-2:], mode="bilinear", align_corners=False)
        return self.classifier(self.fuse(torch.cat([feat, low], dim=1)))


class FornetModel(nn.Module):
    """FoR-Net. ``forward`` returns logits only (export, inference); ``forward_all`` returns everything."""

    def __init__(
        self,
        config: FornetConfig,
        num_classes: int = 19,
        pretrained_backbone: str | os.PathLike | None = None,
        topk_ratios: float | Sequence[float] | None = None,
        name: str = "",
    ) -> None:
        super().__init__()
        if len(config.branch_kernels) != len(config.branch_dilations):
            raise ValueError("branch_kernels and branch_dilations must have the same length")
        if (problem := selector_cue_problem(config)) is not None:
            raise ValueError(problem)
        self.name = name
        self.num_classes = num_classes
        c = config.channels
        indices = tuple(i for i in (config.low_index, config.mid_index, config.high_index) if i is not None)
        self.backbone = Backbone(config.backbone, config.output_stride, indices, pretrained=pretrained_backbone)
        if config.backbone_bn_eps is not None:
            for m in self.backbone.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eps = config.backbone_bn_eps
        low_ch, *_, high_ch = self.backbone.channels
        self.transition = ConvBNReLU(high_ch, c, 1)
        self.lateral = ConvBNReLU(self.backbone.channels[1], c, 1) if config.mid_index is not None else None
        self.selector = Selector(c, separable=config.separable_branches)
        self.context = GlobalContext(c)
        self.branches = nn.ModuleList(
            conv_block(c, c, k, dilation=d, separable=config.separable_branches, residual=config.residual_branches)
            for k, d in zip(config.branch_kernels, config.branch_dilations)
        )
        if config.decoder == "linear":
            self.decoder: nn.Module = LinearDecoder(c, low_ch, num_classes)
        else:
            self.decoder = Decoder(c, low_ch, config.low_channels, num_classes, config.decoder)
        self.aux = nn.Conv2d(c, num_classes, 1, bias=True) if config.aux_classifier else None
        self.config = config
        self.topk_ratios = normalize_ratios(
            config.topk_ratios if topk_ratios is None else topk_ratios, len(self.branches)
        )
        self._selector_cue: str | None = None  # a run-time choice, over the config's

    @property
    def topk_ratios(self) -> tuple[float, ...]:
        return self._topk_ratios

    @topk_ratios.setter
    def topk_ratios(self, ratios: float | Sequence[float]) -> None:
        """Change the Top-K ratios at run time: 0 turns a branch off, 1 selects every position."""
        self._topk_ratios = normalize_ratios(ratios, len(self.branches))

    @property
    def selector_cue(self) -> str:
        """What ranks the cells besides the learned selector now (:meth:`selector_cue_in` this mode)."""
        return self.selector_cue_in(self.training)

    def selector_cue_in(self, training: bool) -> str:
        """The cue in training or eval mode: the run-time choice if one was made, else
        ``FornetConfig.eval_selector_cue`` in eval mode (when set), else ``FornetConfig.selector_cue``."""
        if self._selector_cue is not None:
            return self._selector_cue
        if not training and self.config.eval_selector_cue is not None:
            return self.config.eval_selector_cue
        return self.config.selector_cue

    @selector_cue.setter
    def selector_cue(self, cue: str | None) -> None:
        """Choose the cue at run time, in training and eval mode (None: the config's again), e.g. let the first
        pass's expected errors choose the cells of a model trained with the learned selector alone (the
        weights are the same; only the ranking changes)."""
        if cue is not None and (problem := selector_cue_problem(self.config, cue)) is not None:
            raise ConfigError(f"{problem}.")
        self._selector_cue = cue

    @property
    def stride(self) -> int:
        """Stride of the importance grid relative to the input."""
        return self.backbone.strides[1] if self.lateral is not None else self.backbone.strides[-1]

    def forward_all(self, x: torch.Tensor, focus: FocusContext | None = None) -> FornetOutput:
        """Every output. ``focus``: run ``x`` as a tile of a larger image whose global-context input and Top-K
        thresholds are given (focus inference); the masks then hold the positions at or above the thresholds."""
        size = x.shape[-2:]
        low, *rest = self.backbone(x)
        feat = self.transition(rest[-1])
        if self.lateral is not None:
            mid = self.lateral(rest[0])
            feat = mid + F.interpolate(feat, size=mid.shape[-2:], mode="bilinear", align_corners=False)
        z = self.selector(feat)
        if self.selector_cue != "none":
            cue = self.uncertainty_cue(feat, low, z.shape[-2:])
            z = z + cue if self.selector_cue == "gap" else cue + RULE_TIEBREAK * z
        importance = torch.sigmoid(z)
        if focus is None:
            masks = topk_masks(z, self.topk_ratios)
            pooled = feat.mean(dim=(2, 3), keepdim=True)
        else:
            masks = (z.float() >= focus.thresholds.float()[:, :, None, None]).to(z.dtype)
            pooled = focus.pooled
        ctx = self.context(feat, pooled)
        agg = feat
        for i, (branch, ratio) in enumerate(zip(self.branches, self.topk_ratios)):
            if ratio == 0.0:  # branch off: it contributes nothing, not even its BN bias
                continue
            m = straight_through(masks[:, i : i + 1], importance).to(ctx.dtype)
            out = branch(ctx * m)
            agg = agg + (out * m if self.config.mask_branch_output else out)
        logits = self.decoder(agg, low)
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return FornetOutput(logits, z, masks, None if self.aux is None else self.aux(feat), pooled)

    def uncertainty_cue(self, feat: torch.Tensor, low: torch.Tensor, grid: torch.Size) -> torch.Tensor:
        """How unsure the prediction with the branches off is, on the selector's grid (detached: the cue steers
        the selection, the selector's loss trains only the learned part). "gap"/"gap_rule": minus the top-2
        logit gap; "error_rule": the logit of the expected share of wrong pixels, 1 - max softmax."""
        with torch.no_grad():
            logits = self.decoder(feat, low).float()
            if self.selector_cue != "error_rule":
                # Bilinear at half size averages each 2 x 2 block (stride-8 logits, stride-16 grid); exportable.
                return -F.interpolate(top2_gap(logits, dim=1), size=grid, mode="bilinear", align_corners=False)
            # At twice the decoder's resolution, as the model's own logits are upsampled: between two sure
            # classes the interpolated logits cross, so the softmax of these (not an upsampled softmax) also
            # sees the band along each predicted boundary. x2 was chosen on held-out runs (docs/STUDY.md
            # section 4: x1 finds 1.2-1.5 points fewer errors at Top-10 %, x4 and x8 no more than x2).
            logits = F.interpolate(logits, scale_factor=2.0, mode="bilinear", align_corners=False)
            # 1 - max softmax = 1 - 1 / sum(exp(l - max l)): the same number, but onnxruntime's Softmax over
            # the channel axis of NCHW took 8x longer than these reductions (60 against 8 ms at 1024 x 2048).
            unsure = 1.0 - (logits - logits.amax(dim=1, keepdim=True)).exp().sum(dim=1, keepdim=True).reciprocal()
            k = max(1, 2 * self.stride // self.backbone.strides[0])  # pixels of that map per cell side
            pooled = F.avg_pool2d(unsure, k, ceil_mode=True) if k > 1 else unsure
            if pooled.shape[-2:] != grid:  # odd input sizes: the backbone's rounding can differ from ceil's
                pooled = F.interpolate(pooled, size=grid, mode="bilinear", align_corners=False)
            return torch.logit(pooled, eps=ERROR_CUE_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_all(x).logits

    def extra_repr(self) -> str:
        return f"name={self.name!r}, num_classes={self.num_classes}, topk_ratios={self.topk_ratios}"


