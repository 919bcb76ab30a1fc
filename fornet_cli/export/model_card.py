"""The README.md model card of a Hub export: what the model is, what it was trained on, how it scores.

Everything in it comes from the checkpoint's ``config.json`` (architecture, classes, ``extra["training"]``)
and the training run's ``best_metrics.json``; what was not recorded is said to be unknown, never guessed.
"""

from __future__ import annotations

import json
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from ..errors import UnknownModelError
from ..model import PAPER_RATIOS, FornetConfig, get_entry
from ..weights.format import ModelMeta

PAPER_ID = "2605.02764"
PAPER_TITLE = "Learning to Focus on Hard Regions for Efficient Semantic Segmentation"
CITATION = f"""@misc{{fornet_{PAPER_ID.replace('.', '_')},
  title         = {{{PAPER_TITLE}}},
  eprint        = {{{PAPER_ID}}},
  archivePrefix = {{arXiv}},
  year          = {{2026}},
  url           = {{https://arxiv.org/abs/{PAPER_ID}}}
}}"""
# The order of the front matter's keys (ModelCardData alone would sort them).
FRONT_MATTER_ORDER = ["license", "library_name", "pipeline_tag", "tags", "datasets"]


def configuration_statement(meta: ModelMeta) -> str:
    """Whether the weights are the paper's configuration, a registered variant of ours, or modified."""
    config = FornetConfig.from_dict(meta.model_config) if meta.model_config else None
    try:
        registered = get_entry(meta.architecture).config
    except UnknownModelError:
        registered = None
    if config is None:
        config = registered
    if config is None:
        return f"`{meta.architecture}` is not a registered fornet variant; its configuration is in `config.json`."
    same = registered is not None and config.to_dict() == registered.to_dict()
    ratios = tuple(meta.topk_ratios) or config.topk_ratios
    if config.paper and same:
        if tuple(ratios) == PAPER_RATIOS:
            return (
                "**This is the paper's configuration** (FoR-Net on ResNet-101 at output stride 8, C = 256, "
                "Top-K ratios 0.1/0.2/0.3/0.4), built as the paper defines it. The weights were trained by fornet, "
                "not released by the authors (the paper released none)."
            )
        return (
            f"The paper's architecture, **run with Top-K ratios {list(ratios)}** instead of the paper's "
            f"{list(PAPER_RATIOS)}. The weights were trained by fornet, not released by the authors."
        )
    if same:
        description = config.description.removeprefix("Ours, ").removeprefix("Ours: ")
        description = description[:1].upper() + description[1:]
        return (
            f"**This is not the paper's configuration.** `{meta.architecture}` is one of fornet's own efficient "
            f"variants. {description} It keeps FoR-Net's importance selector, nested Top-K masks, global "
            "context and multi-scale branches; numbers from the paper do not apply to it."
        )
    return (
        f"**This is not the paper's configuration**: a modified `{meta.architecture}` (its full configuration is "
        "in `config.json`); numbers from the paper do not apply to it."
    )


def _architecture_rows(meta: ModelMeta, parameters: int, gmacs: float | None) -> list[tuple[str, str]]:
    config = meta.model_config or {}
    ratios = meta.topk_ratios or config.get("topk_ratios")
    pairs = zip(config.get("branch_kernels", ()), config.get("branch_dilations", ()), strict=False)
    branches = ", ".join(f"{k}/{d}" for k, d in pairs)
    if config.get("separable_branches"):
        branches += " (depthwise-separable)"
    rows = [
        ("model", f"`{meta.architecture}`"),
        ("backbone", f"`{config.get('backbone', '?')}`, output stride {config.get('output_stride', '?')}"),
        ("head width C", str(config.get("channels", "?"))),
        ("Top-K ratios", ", ".join(f"{r:g}" for r in ratios) if ratios else "?"),
        ("branches (kernel / dilation)", branches or "?"),
        ("decoder", str(config.get("decoder", "?"))),
        ("classes", str(meta.num_classes)),
        ("parameters", f"{parameters:,}"),
    ]
    if gmacs is not None:
        rows.append(("GMACs at 1024x2048", f"{gmacs:,.1f}"))
    return rows


def _table(header: tuple[str, str], rows: list[tuple[str, str]]) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "| --- | --- |"]
    lines += [f"| {a} | {b} |" for a, b in rows]
    return "\n".join(lines)


def _training_section(meta: ModelMeta) -> str:
    training = meta.extra.get("training")
    if not isinstance(training, dict) or not training:
        return "Training details were not recorded with these weights."
    data = training.get("data")
    lines = []
    if data == "synth":
        lines.append(
            "**Trained on fornet's synthetic street scenes** (`fornet data synth`), not on real images: these "
            "weights demonstrate the pipeline and are not meant for real photographs.\n"
        )
    elif data == "cityscapes":
        lines.append("Trained on **Cityscapes** (gtFine train split, 19 train ids).\n")
    lines.append(_table(("setting", "value"), [(k, f"`{json.dumps(v)}`") for k, v in training.items()]))
    return "\n".join(lines)


def _metrics_section(metrics: dict[str, Any] | None) -> str:
    if not metrics:
        return "No evaluation was recorded with these weights. Measure them with `fornet eval`."
    rows = []
    for key, value in metrics.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            rows.append((key, f"{value:.4f}" if isinstance(value, float) else str(value)))
        elif isinstance(value, dict) and all(isinstance(v, (int, float, type(None))) for v in value.values()):
            rows += [(f"{key}.{k}", "n/a" if v is None else f"{v:.4f}") for k, v in value.items()]
    where = f" at iteration {metrics['iter']}" if "iter" in metrics else ""
    return (
        f"Scores of the training run's best validation{where} (`best_metrics.json`, computed by `fornet eval`'s "
        "code on the run's validation split):\n\n" + _table(("metric", "value"), [r for r in rows if r[0] != "iter"])
    )


def _licence_section(meta: ModelMeta, license: str) -> str:
    training = meta.extra.get("training") or {}
    text = f"The weights are published under `{license}`. fornet's code is MIT-licensed."
    if training.get("pretrained", True) is not False:  # True, a weights name, or not recorded
        text += (
            " Training started from ImageNet backbone weights"
            + ("" if "pretrained" in training else " (if any; not recorded)")
            + ", which carry their own licence (see `fornet weights info`)."
        )
    if training.get("data") == "cityscapes":
        text += (
            " The model was trained on Cityscapes, whose terms of use allow non-commercial purposes only; check "
            "whether they bind your use of weights trained on it."
        )
    return text


def model_card(
    meta: ModelMeta,
    *,
    parameters: int,
    gmacs: float | None = None,
    metrics: dict[str, Any] | None = None,
    license: str = "mit",
    repo_id: str = "<org>/<repo>",
) -> str:
    """README.md for a Hub folder (Hugging Face front matter + markdown)."""
    data = (meta.extra.get("training") or {}).get("data")
    card_data = ModelCardData(
        license=license,
        library_name="fornet",
        pipeline_tag="image-segmentation",
        tags=["semantic-segmentation", "fornet", "pytorch", "safetensors"],
        datasets=["cityscapes"] if data == "cityscapes" else None,  # None: left out
    )
    classes = [
        (str(i), f"{name}" + (f" (rgb {tuple(meta.palette[i])})" if meta.palette else ""))
        for i, name in enumerate(meta.class_names)
    ]
    mean = ", ".join(f"{v:g}" for v in meta.mean)
    std = ", ".join(f"{v:g}" for v in meta.std)
    sections = [
        f"# {meta.architecture}: FoR-Net semantic segmentation",
        f"FoR-Net ([arXiv {PAPER_ID}](https://arxiv.org/abs/{PAPER_ID}), \"{PAPER_TITLE}\") scores every position of "
        "a feature grid with an importance selector and spends multi-scale branches on the Top-K hardest ones.\n\n"
        + configuration_statement(meta),
        "## Architecture\n\n" + _table(("part", "value"), _architecture_rows(meta, parameters, gmacs)),
        f"## Input\n\nRGB image, `x = (pixel / 255 - mean) / std` with mean ({mean}) and std ({std}); any size "
        "(whole image or sliding window). Output: per-pixel class logits at the input size.",
        "## Classes\n\n" + _table(("train id", "class"), classes),
        "## Training\n\n" + _training_section(meta),
        "## Evaluation\n\n" + _metrics_section(metrics),
        "## Use\n\n```bash\npip install fornet-cli\n"
        f"fornet predict images/ --out masks/ --weights hf://{repo_id}\n"
        "fornet predict images/ --out masks/ --weights path/to/this/folder\n```\n\n"
        f"Upload this folder with `hf upload {repo_id} path/to/this/folder .` "
        "(`huggingface-cli upload` in older huggingface_hub releases).",
        "## Licence\n\n" + _licence_section(meta, license),
        "## Citation\n\n```bibtex\n" + CITATION + "\n```",
    ]
    # ModelCardData writes the YAML (quoting values YAML would misread, e.g. a licence "yes"); ModelCard
    # parses the whole card back, so a card the Hub could not read fails here, not after the upload.
    front = card_data.to_yaml(original_order=FRONT_MATTER_ORDER)
    return str(ModelCard(f"---\n{front}\n---\n\n" + "\n\n".join(sections) + "\n"))
