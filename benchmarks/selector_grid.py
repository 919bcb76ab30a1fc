"""How many errors can a region made of grid cells hold? Rules that choose cells, at several grid strides.

The selector's Top-K region is made of cells of its grid (16 x 16 pixels for our variants); the predicted-
boundary band it is compared with is made of pixels. This separates the two effects: for trained runs, on the
validation split, the share of the errors inside as many cells as each rule takes, at the selector's stride
and at finer ones:

  selector      the selector's importance (for a finer grid, resized bilinearly)
  band cells    the cells holding the most pixels of the fixed predicted-boundary band (show-hardness's d)
  gap cells     the cells with the smallest mean gap between the two highest logits
  sel+gap       the mean of the selector's and the gap rule's ranks
  aux errors    the cells holding the most errors of the auxiliary prediction (an oracle: needs the truth)
  ceiling       the cells holding the most errors (the best any rule on that grid can do)

and the area-matched pixel band of `fornet show-hardness` for reference (docs/STUDY.md).

    python benchmarks/selector_grid.py runs/study800/a-seed0 runs/study800/a-seed1 runs/study800/a-seed2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from fornet_cli.data.cityscapes import CityscapesDataset
from fornet_cli.data.transforms import eval_transforms
from fornet_cli.evaluation.counting import evaluated_mask, to_label_ids
from fornet_cli.evaluation.hard_regions import scale_width
from fornet_cli.evaluation.morphology import boundary_band
from fornet_cli.hardness.analysis import DEFAULT_BAND_WIDTH, analyze_image
from fornet_cli.hardness.regions import cell_of_pixel, cell_sums, gap_scores, logit_gap
from fornet_cli.hardness.summary import summarize
from fornet_cli.weights.resolve import load_weights

RULES = ("selector", "band cells", "gap cells", "sel+gap", "aux errors", "ceiling")


def _rank(scores: torch.Tensor) -> torch.Tensor:
    return torch.argsort(torch.argsort(scores, stable=True), stable=True).double()


def score_run(run: Path, strides: list[int], ratios: list[float], split: str) -> dict:
    """{stride: {rule: {ratio: recall}}} plus the pixel band, for one trained run."""
    model = load_weights(run).model.eval()
    root = Path(json.loads((run / "config.json").read_text())["root"])
    found = {(s, rule, r): 0.0 for s in strides for rule in RULES for r in ratios}
    total, images = 0.0, []
    for sample in CityscapesDataset(root, split, transform=eval_transforms()):
        with torch.inference_mode():
            out = model.forward_all(sample["image"][None])
        logits = out.logits[0]
        size = tuple(logits.shape[-2:])
        gt = to_label_ids(torch.as_tensor(sample["mask"]))
        pred = logits.argmax(0)
        wrong = evaluated_mask(gt) & (to_label_ids(pred, "prediction") != gt)
        aux = F.interpolate(out.aux, size=size, mode="bilinear", align_corners=False)[0].argmax(0)
        aux_wrong = evaluated_mask(gt) & (to_label_ids(aux, "prediction") != gt)
        band = boundary_band(pred.to(torch.uint8), scale_width(DEFAULT_BAND_WIDTH, *size))
        gap = logit_gap(logits)
        total += float(wrong.sum())
        for s in strides:
            grid = (size[0] // s, size[1] // s)
            cells = cell_of_pixel(grid, size)
            n = grid[0] * grid[1]
            z = F.interpolate(out.importance, size=grid, mode="bilinear", align_corners=False).flatten()
            scores = {
                "selector": z.double(),
                "band cells": cell_sums(band, cells, n),
                "gap cells": gap_scores(gap, cells, n),
                "aux errors": cell_sums(aux_wrong, cells, n),
                "ceiling": cell_sums(wrong, cells, n),
            }
            scores["sel+gap"] = _rank(scores["selector"]) + _rank(scores["gap cells"])
            errors = scores["ceiling"]
            for rule, v in scores.items():
                order = torch.argsort(v, descending=True, stable=True)
                for r in ratios:
                    found[(s, rule, r)] += float(errors[order[: round(r * n)]].sum())
        im, _ = analyze_image(pred, out.importance[0, 0], out.masks[0] > 0.5, model.topk_ratios, gt)
        images.append(im)
    rows = summarize(images, model.topk_ratios).to_dict()["selector"]
    band_at = {r["ratio"]: (r["band_area_matched"] or {}).get("error_recall") for r in rows}
    return {
        "run": str(run),
        "grid_stride": model.stride,
        "cells": {str(s): {rule: {str(r): found[(s, rule, r)] / total for r in ratios} for rule in RULES}
                  for s in strides},
        "pixel_band": {str(r): band_at.get(r) for r in ratios},
    }


def table(results: list[dict], ratios: list[float]) -> str:
    """Markdown: mean ± sd over the runs of each rule's error recall (%)."""
    def cell(values: list[float]) -> str:
        v = [100 * x for x in values if x is not None]
        return f"{statistics.mean(v):.1f} ± {statistics.stdev(v):.1f}" if len(v) > 1 else (f"{v[0]:.1f}" if v else "-")

    head = "| grid stride | Top-K | " + " | ".join(RULES) + " | pixel band, same area |"
    lines = [head, "| ---: | ---: |" + " ---: |" * (len(RULES) + 1)]
    for s in results[0]["cells"]:
        for r in map(str, ratios):
            band = cell([x["pixel_band"][r] for x in results])
            lines.append(f"| {s} | {float(r):g} | "
                         + " | ".join(cell([x["cells"][s][rule][r] for x in results]) for rule in RULES)
                         + f" | {band} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="trained FoR-Net run folders (with an auxiliary classifier)")
    ap.add_argument("--strides", default="16,8,4")
    ap.add_argument("--ratios", default="0.1,0.4")
    ap.add_argument("--split", default="val")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, help="write the results here too")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    strides = [int(s) for s in args.strides.split(",")]
    ratios = [float(r) for r in args.ratios.split(",")]
    results = []
    for run in args.runs:
        results.append(score_run(run, strides, ratios, args.split))
        print(f"{run}: done", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results, ratios))


if __name__ == "__main__":
    main()
