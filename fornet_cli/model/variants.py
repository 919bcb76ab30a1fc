"""The registered variants. ``fornet_r101`` is the paper's model; every other variant is our own.

Our variants keep the FoR-Net idea (importance selector, nested Top-K masks, global context, multi-scale
branches, decoder with a low-level skip) and trade resolution and width for speed. ``fornet_r18`` and
``fornet_mbv3`` avoid a dilated backbone (on 2 CPU cores a dilated last stage costs more than the whole
head): a top-down neck (lateral 1x1 on the stride-16 feature + upsampled transition of the stride-32
feature) gives the head a stride-16 grid. Where the grid is coarser than the paper's stride 8, the dilated
branch's dilation shrinks by the same factor so that it still spans about 128 input pixels.
"""

from __future__ import annotations

from dataclasses import replace

from .fornet import FornetConfig
from .registry import register_model

register_model(
    "fornet_r101",
    FornetConfig(
        backbone="resnet101",
        output_stride=8,
        low_index=1,
        channels=256,
        description="The paper's FoR-Net: ResNet-101 at output stride 8, C=256, DeepLabV3+ decoder at stride 4.",
        paper=True,
    ),
    backbone_weights="resnet101.tv_in1k",
)

register_model(
    "fornet_r50",
    FornetConfig(
        backbone="resnet50",
        output_stride=8,
        low_index=1,
        channels=256,
        description="Ours: the paper's head on ResNet-50 (output stride 8).",
    ),
    backbone_weights="resnet50.tv_in1k",
)

# Our first designs (fornet 0.1): an undilated backbone with a top-down neck and a DeepLabV3+-style (r18) or
# one-conv (mbv3) decoder. Kept under their own names so that their checkpoints keep loading by name and the
# study can compare; docs/STUDY.md measures why the redesign replaced them.
R18_V1 = FornetConfig(
    backbone="resnet18",
    output_stride=32,
    low_index=2,
    mid_index=3,
    channels=128,
    branch_dilations=(1, 1, 1, 8),
    description="Ours, first design: ResNet-18 (undilated) with a top-down neck to a stride-16 head, C=128, "
    "DeepLabV3+ decoder at stride 8.",
)
MBV3_V1 = replace(
    R18_V1,
    backbone="mobilenetv3_large_100",
    channels=96,
    separable_branches=True,
    low_channels=32,
    decoder="light",
    description="Ours, first design: MobileNetV3-Large (timm, undilated) with a top-down neck to a stride-16 "
    "head, C=96, depthwise-separable selector and branches, one-conv decoder at stride 8.",
)

# The redesign (docs/STUDY.md: the factor study, and the design chosen on held-out data): LRASPP's linear
# decoder (1x1 classifiers on the head's feature and the stride-8 skip, summed), torchvision's MobileNetV3-L
# implementation (its initialisation trains faster from scratch than timm's), and an auxiliary 1x1 classifier
# on the head's feature before the branches, whose errors teach the selector where the model goes wrong
# (LossConfig's "auto" selector target). The ImageNet weights are timm's, loaded tensor by tensor.
R18_V2 = replace(
    R18_V1,
    decoder="linear",
    aux_classifier=True,
    description="Ours: ResNet-18 (undilated) with a top-down neck to a stride-16 head, C=128, linear decoder "
    "with a stride-8 skip, auxiliary classifier whose errors the selector learns.",
)
MBV3_V2 = replace(
    MBV3_V1,
    backbone="tv_mobilenet_v3_large",
    decoder="linear",
    aux_classifier=True,
    description="Ours: MobileNetV3-Large (torchvision's, undilated) with a top-down neck to a stride-16 head, "
    "C=96, depthwise-separable selector and branches, linear decoder with a stride-8 skip, auxiliary "
    "classifier whose errors the selector learns.",
)

# fornet 0.3 (docs/STUDY.md, "Two more redesigns ... on the held-out data"): residual branches whose output is
# masked too, so that a branch changes the head's feature only at the positions its mask selected (the paper
# masks the branch's input only, and a convolution spreads its output onto unselected neighbours). Chosen on
# held-out data; it adds no parameters and no convolutions (the masks multiply outputs).
MBV3_V3 = replace(
    MBV3_V2,
    residual_branches=True,
    mask_branch_output=True,
    description="Ours: MobileNetV3-Large (torchvision's, undilated) with a top-down neck to a stride-16 head, "
    "C=96, depthwise-separable selector and residual branches that change only their selected positions, "
    "linear decoder with a stride-8 skip, auxiliary classifier whose errors the selector learns.",
)

# fornet 0.4 (docs/STUDY.md section 4, "Would the prediction's own uncertainty select better?"): the same
# model and training; in eval mode the cells the branches refine are those where the prediction with the
# branches off expects the most wrong pixels, which hold more of the errors than the learned selector's
# choice (chosen on held-out runs, reported on the study's). Checkpoints of 0.3 carry their own config and
# keep the learned choice; ``--selector-cue`` switches either way on the same weights.
MBV3_V4 = replace(
    MBV3_V3,
    eval_selector_cue="error_rule",
    description="Ours: MobileNetV3-Large (torchvision's, undilated) with a top-down neck to a stride-16 head, "
    "C=96, depthwise-separable selector and residual branches that change only their selected positions, "
    "linear decoder with a stride-8 skip, auxiliary classifier whose errors the selector learns; at "
    "inference the branches refine the cells where the branches-off prediction expects the most errors.",
)

register_model("fornet_r18", R18_V2, backbone_weights="resnet18.tv_in1k")
register_model("fornet_mbv3", MBV3_V4, backbone_weights="mobilenetv3_large_100.ra_in1k")
register_model("fornet_r18_v1", R18_V1, backbone_weights="resnet18.tv_in1k")
register_model("fornet_mbv3_v1", MBV3_V1, backbone_weights="mobilenetv3_large_100.ra_in1k")
register_model("fornet_mbv3_v2", MBV3_V2, backbone_weights="mobilenetv3_large_100.ra_in1k")
register_model("fornet_mbv3_v3", MBV3_V3, backbone_weights="mobilenetv3_large_100.ra_in1k")

# Variants whose registered design changed, and the names their earlier designs are kept under (oldest first,
# with the fornet version that registered each).
REDESIGNED: dict[str, tuple[tuple[str, str], ...]] = {
    "fornet_mbv3": (("fornet_mbv3_v1", "0.1"), ("fornet_mbv3_v2", "0.2"), ("fornet_mbv3_v3", "0.3")),
    "fornet_r18": (("fornet_r18_v1", "0.1"),),
}
