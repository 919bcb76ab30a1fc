"""Why does our `fornet_mbv3` learn slower than torchvision's LRASPP? One factor at a time (docs/STUDY.md).

Every row is the first `fornet_mbv3` (fornet 0.1, registered as `fornet_mbv3_v1`) with one thing changed
towards LRASPP (rows with several letters change several), trained with the same data, recipe, budget and seeds
as the study (benchmarks/study.py) and scored at its last iteration on the validation split:

  base  fornet_mbv3_v1 (timm MobileNetV3-L, undilated + top-down neck, light decoder, CE+Dice+sel)
  tv    torchvision's MobileNetV3-L implementation (BatchNorm eps 1e-3, its init), same stages
  eps   timm's MobileNetV3-L with torchvision's BatchNorm eps 1e-3 (what of `tv` is the eps)
  dil   a dilated last stage (output stride 16) feeds the head directly, no neck
  lin   LRASPP's decoder: 1x1 classifiers on the head's feature and the stride-8 skip, summed
  ce    cross-entropy only (no Dice); the selector loss stays
  nosel no selector loss
  res   residual branches: each branch ends in a BatchNorm (no ReLU) whose scale starts at 0
  struct  tv + dil + lin: LRASPP's backbone and decoder around FoR-Net's head
  tvlin   tv + lin (undilated, with the neck: the cheap structure)
  epslin  eps + lin
  lraspp  torchvision lraspp_mobilenet_v3_large itself
  d_*, r18*  design candidates of later versions, chosen on held-out data (--data-seed 7 --seeds 100,101;
          docs/STUDY.md sections 2 and 4): d_aux is fornet_mbv3 0.2, d_mo fornet_mbv3 0.3, r18aux fornet_r18 0.2

    python benchmarks/factors.py --jobs 2                      # 9 rows x 3 seeds, 200 iterations
    python benchmarks/factors.py --rows base,dil --seeds 0     # a subset; finished runs are reused
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from study import base_config, job

from fornet_cli.data.synth import ensure_synth_dataset
from fornet_cli.fsutil import atomic_write_text
from fornet_cli.model import get_entry, register_model
from fornet_cli.training.config import TrainConfig

TV, DIL, LIN = {"backbone": "tv_mobilenet_v3_large"}, {"output_stride": 16, "mid_index": None}, {"decoder": "linear"}
S8 = {"low_index": 1, "mid_index": 2, "branch_dilations": (1, 1, 1, 16)}
MO = {"residual_branches": True, "mask_branch_output": True}  # branches that change only their selected positions
AUX, AUX_LOSS = {"aux_classifier": True}, {"aux_weight": 0.4, "selector_target": "aux_error", "selector_fit": "rank"}
# row -> (label, model-config changes or a peer name, loss changes)
ROWS: dict[str, tuple[str, dict[str, Any] | str, dict[str, Any]]] = {
    "base": ("fornet_mbv3_v1 (the first design)", {}, {}),
    "tv": ("torchvision MobileNetV3-L implementation", TV, {}),
    "eps": ("timm MobileNetV3-L with BatchNorm eps 1e-3", {"backbone_bn_eps": 1e-3}, {}),
    "dil": ("dilated stride-16 last stage, no neck", DIL, {}),
    "lin": ("LRASPP's linear decoder", LIN, {}),
    "ce": ("cross-entropy only (no Dice)", {}, {"dice_weight": 0.0}),
    "nosel": ("no selector loss", {}, {"selector_weight": 0.0}),
    "res": ("residual branches, zero-initialised", {"residual_branches": True}, {}),
    "struct": ("tv + dil + lin (LRASPP's backbone and decoder)", {**TV, **DIL, **LIN}, {}),
    "tvlin": ("tv + lin (undilated backbone with the neck)", {**TV, **LIN}, {}),
    "epslin": ("eps + lin (timm backbone, eps 1e-3, neck, linear decoder)", {"backbone_bn_eps": 1e-3, **LIN}, {}),
    "lraspp": ("torchvision lraspp_mobilenet_v3_large", "lraspp_mobilenet_v3_large", {}),
    # Design candidates for the redesigned variant (chosen on --data-seed 7 --seeds 100, reported elsewhere).
    "d0": ("design: tv + lin", {**TV, **LIN}, {}),
    "d_aux": ("design: tv + lin, aux classifier, selector on its errors (rank)", {**TV, **LIN, **AUX}, AUX_LOSS),
    "d_err": ("design: tv + lin, selector on the final errors (rank)", {**TV, **LIN},
              {"selector_target": "error", "selector_fit": "rank"}),
    "d_res": ("design: tv + lin, residual branches", {**TV, **LIN, "residual_branches": True}, {}),
    "d_auxres": ("design: d_aux + residual branches", {**TV, **LIN, **AUX, "residual_branches": True}, AUX_LOSS),
    "d_dense": ("design: tv + lin, Top-K 1 (dense branches)", {**TV, **LIN, "topk_ratios": (1.0, 1.0, 1.0, 1.0)}, {}),
    "d_off": ("design: tv + lin, Top-K 0 (branches off)", {**TV, **LIN, "topk_ratios": (0.0, 0.0, 0.0, 0.0)}, {}),
    # The head on the stride-8 grid (the paper's): neck from stride 32 to the stride-8 feature, skip at stride 4,
    # the dilated branch at the paper's 16 (docs/STUDY.md, "Two more redesigns of the branches and the grid").
    "d_s8": ("design: d_aux with the head at stride 8 (neck to the stride-8 feature, skip at stride 4)",
             {**TV, **LIN, **AUX, **S8}, AUX_LOSS),
    "d_s8off": ("design: d_s8, Top-K 0 (branches off)", {**TV, **LIN, **AUX, **S8, "topk_ratios": (0.0,) * 4},
                AUX_LOSS),
    "d_auxoff": ("design: d_aux, Top-K 0 (branches off)", {**TV, **LIN, **AUX, "topk_ratios": (0.0,) * 4}, AUX_LOSS),
    "d_mo": ("design: d_aux, residual branches whose output counts only at their selected positions",
             {**TV, **LIN, **AUX, **MO}, AUX_LOSS),
    "d_s8mo": ("design: d_s8 with d_mo's branches",
               {**TV, **LIN, **AUX, **S8, **MO}, AUX_LOSS),
    # fornet_mbv3 0.3 (d_mo) with the first pass's uncertainty added to the selector's score (selector_cue).
    "d_mogap": ("design: d_mo, the selector's score plus the branches-off prediction's uncertainty",
                {**TV, **LIN, **AUX, **MO, "selector_cue": "gap"}, AUX_LOSS),
    "d_morule": ("design: d_mo, the branches-off prediction's uncertainty selects (learned score: tie-break)",
                 {**TV, **LIN, **AUX, **MO, "selector_cue": "gap_rule"}, AUX_LOSS),
    "d_moerr": ("design: d_mo, the branches-off prediction's expected errors per cell select (learned: tie-break)",
                {**TV, **LIN, **AUX, **MO, "selector_cue": "error_rule"}, AUX_LOSS),
    "r18": ("design: fornet_r18 (first design)", {"_base": "fornet_r18_v1"}, {}),
    "r18lin": ("design: fornet_r18 with the linear decoder", {"_base": "fornet_r18_v1", **LIN}, {}),
    "r18aux": ("design: r18lin, aux classifier, selector on its errors", {"_base": "fornet_r18_v1", **LIN, **AUX},
               AUX_LOSS),
    "r18mo": ("design: r18aux (fornet_r18 v2) with d_mo's branches", {"_base": "fornet_r18_v1", **LIN, **AUX, **MO},
              AUX_LOSS),
}


def _register_rows() -> None:
    """Each FoR-Net row is a variant registered under ``factor_<row>`` (in every worker process too)."""
    for key, (label, change, _) in ROWS.items():
        if isinstance(change, dict):
            change = dict(change)
            base = get_entry(change.pop("_base", "fornet_mbv3_v1")).config
            register_model(f"factor_{key}", replace(base, **change, description=f"factor study: {label}"))


_register_rows()


def row_config(base: TrainConfig, key: str, seed: int) -> TrainConfig:
    _, change, loss = ROWS[key]
    model = change if isinstance(change, str) else f"factor_{key}"
    return replace(base, model=model, seed=seed, loss=replace(base.loss, **loss))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default=",".join(ROWS))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=1, help="runs in parallel (each with --threads threads)")
    ap.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 1) // 2))
    ap.add_argument("--out", default="runs/factors")
    ap.add_argument("--data-seed", type=int, default=0,
                    help="seed of the generated data set (choose designs on another set than the study reports on)")
    args = ap.parse_args()
    keys, seeds = args.rows.split(","), [int(s) for s in args.seeds.split(",")]
    out = Path(args.out)
    root = ensure_synth_dataset(out / "data", 100, 20, (256, 512), args.data_seed)  # 0: the study's data set
    base = base_config(root, args.iters, (256, 256), 8, "cpu")
    jobs = [(row_config(base, k, s), out / f"{k}-seed{s}", args.threads) for s in seeds for k in keys]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        records = list(pool.map(job, jobs))
    results: dict[str, list[dict]] = {k: [] for k in keys}
    for (config, path, _), record in zip(jobs, records):
        results[path.name.rsplit("-seed", 1)[0]].append({"seed": config.seed, **record})
    summary = {
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}",
        "settings": vars(args),
        "seconds": round(time.perf_counter() - t0, 1),
        "rows": {k: {"label": ROWS[k][0], "runs": results[k]} for k in keys},
    }
    atomic_write_text(out / "factors.json", json.dumps(summary, indent=2) + "\n")
    print(table(summary))


def table(summary: dict) -> str:
    """Markdown: each row's mean ± sd, and its paired difference from `base` (same seed)."""
    rows = summary["rows"]
    base = {r["seed"]: r for r in rows.get("base", {}).get("runs", [])}
    lines = ["| row | change | mIoU (%) | vs base, per seed (points) | mean diff | train CE (last 50 it.) |",
             "| --- | --- | ---: | --- | ---: | ---: |"]
    for key, row in rows.items():
        runs = row["runs"]
        miou = [100 * r["miou"] for r in runs]
        diffs = [100 * (r["miou"] - base[r["seed"]]["miou"]) for r in runs if r["seed"] in base]
        ce = [r["train_ce"] for r in runs if r.get("train_ce") is not None]
        sd = statistics.stdev(miou) if len(miou) > 1 else 0.0
        per_seed = ", ".join(f"{d:+.1f}" for d in diffs) if key != "base" else "-"
        mean_diff = f"{statistics.mean(diffs):+.1f}" if diffs and key != "base" else "-"
        lines.append(f"| {key} | {row['label']} | {statistics.mean(miou):.1f} ± {sd:.1f} | {per_seed} | {mean_diff} | "
                     f"{statistics.mean(ce):.3f} |" if ce else "")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
