"""Would the first pass's uncertainty select better than the learned selector? (docs/STUDY.md section 4)

Analysis of trained run folders, no training: for each model the validation split is predicted once per
selector cue, switched at inference on the same weights (``FornetModel.selector_cue``, as
``fornet eval|predict|show-hardness --selector-cue``): ``none`` (the learned selector, as trained),
``gap_rule`` (the cells where the prediction with the branches off has the smallest mean top-2 logit gap)
and ``error_rule`` (the cells where that prediction expects the most wrong pixels, the mean of 1 - its
highest softmax probability). With masked branch outputs (fornet_mbv3 0.3) that first pass is the model's own
prediction outside the masks. Printed per run and cue: mIoU, and at each Top-K ratio the share of the errors
inside the region next to the area-matched predicted-boundary band and the logit-gap cells of the final
prediction, as `fornet show-hardness` counts them.

    python benchmarks/selector_twopass.py runs/study800v3/data runs/study800v3/a-seed0 runs/study800v3/a-seed1
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from study import hardness_of_split

from fornet_cli.evaluation.metrics import class_iou, nanmean
from fornet_cli.hardness.summary import summarize
from fornet_cli.model import FornetModel
from fornet_cli.weights.resolve import load_weights

CUES = ("none", "gap_rule", "error_rule")


def evaluate(model: FornetModel, root: Path, cue: str) -> tuple[float, list[dict]]:
    """mIoU (19 classes) and the selector rows of show-hardness's summary, over the validation split."""
    model.selector_cue = cue
    images, conf = hardness_of_split(model, root)
    return nanmean(list(class_iou(conf.numpy()).values())), summarize(images, model.topk_ratios).to_dict()["selector"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="the runs' data folder (Cityscapes layout)")
    ap.add_argument("runs", type=Path, nargs="+", help="run folders of FoR-Net models")
    ap.add_argument("--cues", default=",".join(CUES), help=f"comma-separated selector cues (default {','.join(CUES)})")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print("| run | selector cue | mIoU (%) | Top-K: selection / band, same area / gap cells (% of the errors) |")
    print("| --- | --- | ---: | --- |")
    for run in args.runs:
        model = load_weights(run).model.eval()
        for cue in args.cues.split(","):
            miou, rows = evaluate(model, args.data, cue)
            cells = "; ".join(f"{r['ratio']:g}: {100 * r['error_recall']:.1f} / "
                              f"{100 * (r['band_area_matched'] or {}).get('error_recall', float('nan')):.1f} / "
                              f"{100 * r['gap_error_recall']:.1f}" for r in rows)
            print(f"| {run.name} | {cue} | {100 * miou:.1f} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
