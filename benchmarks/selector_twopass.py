"""Would the first pass's uncertainty select better than the learned selector? (docs/STUDY.md section 4)

Analysis of trained run folders, no training: for each model, the validation split is predicted twice, once
as trained (the learned selector chooses the Top-K cells) and once with the selector replaced at inference by
the cells where the prediction with the branches off is least sure (the smallest mean gap between its two
highest logits, `regions.gap_scores`). With masked branch outputs (fornet_mbv3 0.3) that first pass is the
model's own prediction outside the masks. Printed per run and selection: mIoU, and at each Top-K ratio the
share of the errors inside the region next to the area-matched predicted-boundary band and the logit-gap cells
of the final prediction, as `fornet show-hardness` counts them.

    python benchmarks/selector_twopass.py runs/study800v3/data runs/study800v3/a-seed0 runs/study800v3/a-seed1
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from fornet_cli.data.cityscapes import CityscapesDataset
from fornet_cli.data.transforms import eval_transforms
from fornet_cli.evaluation.counting import to_label_ids
from fornet_cli.hardness.analysis import analyze_image
from fornet_cli.hardness.regions import cell_of_pixel, gap_scores, logit_gap
from fornet_cli.hardness.summary import summarize
from fornet_cli.model import FornetModel
from fornet_cli.weights.resolve import load_weights


class FixedScore(torch.nn.Module):
    """Stands in for the selector: returns the score it was given for the current image."""

    def __init__(self) -> None:
        super().__init__()
        self.z = torch.zeros(0)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        return self.z.to(feat.dtype)


def first_pass_scores(model: FornetModel, x: torch.Tensor) -> torch.Tensor:
    """``1 x 1 x h x w``: minus the mean logit gap per grid cell of the prediction with the branches off."""
    ratios = model.topk_ratios
    model.topk_ratios = 0
    try:
        first = model.forward_all(x)
    finally:
        model.topk_ratios = ratios
    h, w = first.importance.shape[-2:]
    cells = cell_of_pixel((h, w), tuple(x.shape[-2:]))
    return gap_scores(logit_gap(first.logits[0]), cells, h * w).reshape(1, 1, h, w)


def evaluate(model: FornetModel, root: Path, twopass: bool) -> tuple[float, list[dict]]:
    """mIoU (19 classes) and the selector rows of show-hardness's summary, over the validation split."""
    learned, fixed = model.selector, FixedScore()
    conf = np.zeros((19, 19), np.int64)
    images = []
    for sample in CityscapesDataset(root, "val", transform=eval_transforms()):
        x = sample["image"][None]
        with torch.inference_mode():
            if twopass:
                fixed.z = first_pass_scores(model, x)
                model.selector = fixed
            try:
                out = model.forward_all(x)
            finally:
                model.selector = learned
        logits = out.logits[0]
        pred, gt = logits.argmax(0), torch.as_tensor(sample["mask"])
        valid = gt != 255
        conf += np.bincount(19 * gt[valid].numpy().astype(np.int64) + pred[valid].numpy(), minlength=361).reshape(19, 19)
        im, _ = analyze_image(pred, out.importance[0, 0], out.masks[0] > 0.5, model.topk_ratios, to_label_ids(gt),
                              gap=logit_gap(logits))
        images.append(im)
    inter = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - inter
    miou = float((inter[union > 0] / union[union > 0]).mean())
    return miou, summarize(images, model.topk_ratios).to_dict()["selector"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="the runs' data folder (Cityscapes layout)")
    ap.add_argument("runs", type=Path, nargs="+", help="run folders of FoR-Net models")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print("| run | selection | mIoU (%) | Top-K: selection / band, same area / gap cells (% of the errors) |")
    print("| --- | --- | ---: | --- |")
    for run in args.runs:
        model = load_weights(run).model.eval()
        for twopass in (False, True):
            miou, rows = evaluate(model, args.data, twopass)
            cells = "; ".join(f"{r['ratio']:g}: {100 * r['error_recall']:.1f} / "
                              f"{100 * (r['band_area_matched'] or {}).get('error_recall', float('nan')):.1f} / "
                              f"{100 * r['gap_error_recall']:.1f}" for r in rows)
            print(f"| {run.name} | {'first-pass gap' if twopass else 'learned'} | {100 * miou:.1f} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
