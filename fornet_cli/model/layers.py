"""Small building blocks shared by every FoR-Net variant."""

from __future__ import annotations

from torch import nn


class ConvBNReLU(nn.Sequential):
    """Conv (no bias) -> BatchNorm2d -> ReLU, padded to keep the size ("same" for odd kernels)."""

    def __init__(self, cin: int, cout: int, kernel_size: int = 1, dilation: int = 1, groups: int = 1) -> None:
        padding = dilation * (kernel_size // 2)
        super().__init__(
            nn.Conv2d(cin, cout, kernel_size, padding=padding, dilation=dilation, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class ConvBNZero(nn.Sequential):
    """Conv (no bias) -> BatchNorm2d whose scale starts at 0: the last layer of a residual branch, which then
    adds nothing at the start and learns its contribution (no ReLU: a zero input to it passes no gradient)."""

    def __init__(self, cin: int, cout: int, kernel_size: int = 1, dilation: int = 1) -> None:
        padding = dilation * (kernel_size // 2)
        bn = nn.BatchNorm2d(cout)
        nn.init.zeros_(bn.weight)
        super().__init__(nn.Conv2d(cin, cout, kernel_size, padding=padding, dilation=dilation, bias=False), bn)


class SeparableConvBNReLU(nn.Sequential):
    """Depthwise k x k ConvBNReLU followed by a pointwise 1x1 ConvBNReLU (MobileNet style).

    For k == 1 the depthwise part would be a per-channel scale, so only the pointwise conv is kept.
    ``residual``: the pointwise part is a :class:`ConvBNZero` (the end of a residual branch).
    """

    def __init__(self, cin: int, cout: int, kernel_size: int = 3, dilation: int = 1, residual: bool = False) -> None:
        layers: list[nn.Module] = []
        if kernel_size > 1:
            layers.append(ConvBNReLU(cin, cin, kernel_size, dilation=dilation, groups=cin))
        layers.append(ConvBNZero(cin, cout, 1) if residual else ConvBNReLU(cin, cout, 1))
        super().__init__(*layers)


def conv_block(
    cin: int, cout: int, kernel_size: int, dilation: int = 1, separable: bool = False, residual: bool = False
) -> nn.Module:
    """A dense or depthwise-separable ConvBNReLU, chosen by a variant's config (``residual``: ending in a
    zero-initialised BatchNorm without ReLU, see :class:`ConvBNZero`)."""
    if separable:
        return SeparableConvBNReLU(cin, cout, kernel_size, dilation, residual)
    return ConvBNZero(cin, cout, kernel_size, dilation) if residual else ConvBNReLU(cin, cout, kernel_size, dilation)
