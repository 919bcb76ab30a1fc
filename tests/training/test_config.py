"""TrainConfig from dicts and files: unknown keys and wrong types are ConfigErrors, recipe < file precedence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fornet_cli.errors import ConfigError
from fornet_cli.training.config import RECIPES, TrainConfig, config_from_file, load_config_file, recipe
from fornet_cli.training.losses import LossConfig


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_a_config_survives_json_and_from_dict(name: str) -> None:
    config = recipe(name)
    assert TrainConfig.from_dict(config.to_dict()) == config  # what a checkpoint stores and resume reads
    via_json = json.loads(json.dumps(config.to_dict()))  # tuples come back as lists
    assert isinstance(via_json["crop"], list)
    assert TrainConfig.from_dict(via_json) == config


def test_lists_become_tuples() -> None:
    config = TrainConfig.from_dict({"crop": [64, 96], "topk_ratios": [0.1, 0.2, 0.3, 0.4], "scale_range": [1, 2]})
    assert config.crop == (64, 96) and config.topk_ratios == (0.1, 0.2, 0.3, 0.4)
    assert config.scale_range == (1.0, 2.0) and isinstance(config.scale_range[0], float)


def test_a_run_folders_config_json_loads_but_only_its_metadata_is_allowed() -> None:
    config = recipe("cpu-quick")
    document = {"fornet_version": "0.1.0", "world_size": 8, **config.to_dict()}  # as run_dir.write_config writes it
    assert TrainConfig.from_dict(document) == config
    with pytest.raises(ConfigError, match="'fornet_vesion'"):
        TrainConfig.from_dict({**config.to_dict(), "fornet_vesion": "0.1.0"})


def test_unknown_keys_are_named_with_close_matches_and_what_to_do() -> None:
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict({"itres": 5, "lr": 1e-3, "colour": "red"})
    message = str(info.value)
    assert "'itres' (Did you mean 'iters'" in message and "'colour'" in message
    assert "Remove or rename them" in message and "val_every" in message  # lists the valid keys
    with pytest.raises(ConfigError, match=r"'loss\.dice_wieght' \(Did you mean 'dice_weight'"):
        TrainConfig.from_dict({"loss": {"dice_wieght": 2.0}})


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"iters": "abc"}, "iters must be a whole number, not 'abc'"),
        ({"iters": True}, "iters must be a whole number"),
        ({"iters": 2.5}, "iters must be a whole number"),
        ({"lr": [1e-3]}, "lr must be a number, not [0.001]"),
        ({"lr": "fast"}, "lr must be a number"),
        ({"lr": float("nan")}, "lr must be a number"),
        ({"crop": [64, 64, 64]}, "crop must be a list of 2 whole numbers"),
        ({"crop": 64}, "crop must be a list of 2 whole numbers"),
        ({"topk_ratios": ["a"]}, "topk_ratios must be a list of numbers or null"),
        ({"amp": "fp8"}, "amp must be one of auto, off, bf16, fp16"),
        ({"sync_bn": "yes"}, "sync_bn must be true or false"),
        ({"pretrained": 1}, "pretrained must be true or false or a string"),
        ({"root": 3}, "root must be a string or null"),
        ({"loss": "ohem"}, "loss must be a mapping"),
        ({"loss": {"ohem_min_kept": "many"}}, "loss.ohem_min_kept must be a whole number"),
    ],
)
def test_a_value_of_the_wrong_type_is_a_config_error_naming_the_key(data: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict(data, "run.yaml")
    assert words in str(info.value) and str(info.value).startswith("In run.yaml, ")


def test_a_non_mapping_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="Expected a mapping of setting names to values in the training config"):
        TrainConfig.from_dict([("iters", 5)])  # type: ignore[arg-type]


def test_yaml_exponents_without_a_dot_are_numbers() -> None:
    # PyYAML (YAML 1.1) reads `lr: 1e-4` as the string "1e-4"
    assert TrainConfig.from_dict({"lr": "1e-4"}).lr == 1e-4


def test_values_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"Top-K ratios must lie in \[0, 1\]"):
        TrainConfig(topk_ratios=(0.1, 1.5))
    with pytest.raises(ConfigError, match="scale_range"):
        TrainConfig(scale_range=(2.0, 0.5))
    with pytest.raises(ConfigError, match="ohem_thresh=1.5"):
        LossConfig(ohem_thresh=1.5)
    with pytest.raises(ConfigError, match="must not be negative"):
        LossConfig(dice_weight=-1.0)


YAML = "recipe: paper\niters: 10\ncrop: [64, 64]\nloss:\n  dice_weight: 2.0\n"
TOML = 'recipe = "paper"\niters = 10\ncrop = [64, 64]\n\n[loss]\ndice_weight = 2.0\n'
JSON = '{"recipe": "paper", "iters": 10, "crop": [64, 64], "loss": {"dice_weight": 2.0}}'


@pytest.mark.parametrize(("name", "text"), [("c.yaml", YAML), ("c.yml", YAML), ("c.toml", TOML), ("c.json", JSON)])
def test_yaml_toml_and_json_files_read_the_same(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    config = config_from_file(path)
    paper = recipe("paper")
    # the file's recipe is the base; the file's settings win over it; loss is merged key by key
    assert config.model == paper.model == "fornet_r101" and config.lr == paper.lr
    assert config.iters == 10 and config.crop == (64, 64) and config.recipe == "paper"
    assert config.loss == LossConfig(**{**paper.loss.__dict__, "dice_weight": 2.0})


def test_the_base_recipe_comes_from_the_caller_then_the_file_then_cpu_quick(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("recipe: paper\niters: 10\n")
    assert config_from_file(path, "cpu-quick").model == recipe("cpu-quick").model != recipe("paper").model
    path.write_text("recipe: my-study\niters: 10\n")  # not a recipe: a label kept in the config
    config = config_from_file(path)
    assert config.model == recipe("cpu-quick").model and config.recipe == "my-study" and config.iters == 10
    path.write_text("iters: 10\n")
    assert config_from_file(path).lr == recipe("cpu-quick").lr


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("c.yaml", "iters: [1,\n", "is not valid YAML"),
        ("c.toml", "iters = \n", "is not valid TOML"),
        ("c.json", '{"iters": }', "is not valid JSON"),
        ("c.yaml", "- iters\n", "holds a list at the top level"),
        ("c.yaml", "", "holds nothing at the top level"),
        ("c.ini", "[x]\n", "unknown config format '.ini'"),
    ],
)
def test_unreadable_files_are_config_errors(tmp_path: Path, name: str, text: str, words: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError, match=words):
        load_config_file(path)
    with pytest.raises(ConfigError, match="Cannot read the config file"):
        load_config_file(tmp_path / "missing.yaml")


def test_yaml_is_read_safely(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("iters: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config_file(path)
