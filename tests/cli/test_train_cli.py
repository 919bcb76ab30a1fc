import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from fornet_cli.cli import app, params, show_hardness
from fornet_cli.cli.train import CONFIG_FILE_ONLY, config_from_options
from fornet_cli.data.synth import generate_dataset
from fornet_cli.training.config import TrainConfig, recipe
from fornet_cli.training.losses import LossConfig
from fornet_cli.weights.checkpoint import load_checkpoint

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    generate_dataset(root, train=4, val=1, size=(64, 128), seed=1, overwrite=True)
    return root


def _args(root: Path, out: Path) -> list[str]:
    return ["train", "--data", "cityscapes", "--root", str(root), "--model", "fornet_mbv3", "--crop", "64",
            "--batch", "2", "--iters", "2", "--val-every", "2", "--workers", "0", "--out", str(out)]


def test_train_command_writes_a_run_and_refuses_to_mix_runs(tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = runner.invoke(app, [*_args(tiny_data, out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["iteration"] == 2 and 0 <= summary["best_miou"] <= 1
    assert "val mIoU" in result.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "fornet_mbv3" and config["crop"] == [64, 64] and config["recipe"] == "cpu-quick"
    again = runner.invoke(app, _args(tiny_data, out))
    assert again.exit_code == 1 and "already holds a training run" in again.stderr


def test_unknown_recipe_and_bad_model(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--recipe", "fast", "--out", str(tmp_path / "x")])
    assert result.exit_code == 1 and "Unknown recipe 'fast'" in result.stderr
    result = runner.invoke(app, ["train", "--model", "fornet_r1O1", "--root", str(tmp_path), "--out", str(tmp_path / "y")])
    assert result.exit_code == 1 and result.stderr.startswith("Error:")


# --- options and config files -------------------------------------------------------------------------------

# Options that do not set a config field.
NOT_SETTINGS = {"--config", "--out", "--resume", "--force", "--print-config", "--json"}


def _resolved(*args: str) -> dict[str, Any]:
    """The config `fornet train ARGS` would train with."""
    result = runner.invoke(app, ["train", "--print-config", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _get(config: dict[str, Any], path: str) -> Any:
    return config["loss"][path[5:]] if path.startswith("loss.") else config[path]


def _flat(text: str) -> str:
    """Output without Rich's box and line breaks."""
    return " ".join(text.replace("│", " ").split())


@pytest.fixture
def true_flags(tmp_path: Path) -> Path:
    """A config file that turns on the flags a --no-... option turns off."""
    path = tmp_path / "flags.yaml"
    path.write_text("sync_bn: true\ndeterministic: true\nloss:\n  ohem: true\n")
    return path


def _option_cases(flags: Path) -> list[tuple[list[str], list[str], str, Any]]:
    """(option and value, other arguments, the field it sets, the value it must land as)."""
    f = ["--config", str(flags)]
    return [
        (["--recipe", "paper"], [], "recipe", "paper"),
        (["--data", "cityscapes"], [], "data", "cityscapes"),
        (["--root", "/data/cs"], [], "root", "/data/cs"),
        (["--classes", "mine.json"], ["--data", "folder", "--root", "/data/mine"], "classes", "mine.json"),
        (["--synth-train", "7"], [], "synth_train", 7),
        (["--synth-val", "3"], [], "synth_val", 3),
        (["--synth-size", "64x128"], [], "synth_size", [64, 128]),
        (["--val-split", "test"], [], "val_split", "test"),
        (["--val-max-images", "5"], [], "val_max_images", 5),
        (["--model", "fornet_r18"], [], "model", "fornet_r18"),
        (["--crop", "64x96"], [], "crop", [64, 96]),
        (["--scale-range", "0.5,2"], [], "scale_range", [0.5, 2.0]),
        (["--batch", "3"], [], "batch", 3),
        (["--iters", "9"], [], "iters", 9),
        (["--lr", "0.01"], [], "lr", 0.01),
        (["--head-lr-mult", "10"], [], "head_lr_mult", 10.0),
        (["--optimizer", "sgd"], [], "optimizer", "sgd"),
        (["--momentum", "0.8"], [], "momentum", 0.8),
        (["--weight-decay", "0.05"], [], "weight_decay", 0.05),
        (["--warmup", "7"], [], "warmup_iters", 7),
        (["--grad-clip", "1.5"], [], "grad_clip", 1.5),
        (["--pretrained", "w.safetensors"], [], "pretrained", "w.safetensors"),
        (["--no-pretrained"], ["--recipe", "paper"], "pretrained", False),
        (["--topk", "0.1,0.2,0.3,0.4"], [], "topk_ratios", [0.1, 0.2, 0.3, 0.4]),
        (["--selector-weight", "0"], [], "loss.selector_weight", 0.0),
        (["--selector-target", "error"], [], "loss.selector_target", "error"),
        (["--selector-fit", "rank"], [], "loss.selector_fit", "rank"),
        (["--aux-weight", "0.7"], [], "loss.aux_weight", 0.7),
        (["--dice-weight", "2"], [], "loss.dice_weight", 2.0),
        (["--ohem"], [], "loss.ohem", True),
        (["--no-ohem"], f, "loss.ohem", False),
        (["--ohem-thresh", "0.5"], [], "loss.ohem_thresh", 0.5),
        (["--ohem-min-kept", "1000"], [], "loss.ohem_min_kept", 1000),
        (["--device", "cpu"], [], "device", "cpu"),
        (["--amp", "off"], [], "amp", "off"),
        (["--channels-last"], [], "channels_last", True),
        (["--no-channels-last"], [], "channels_last", False),
        (["--workers", "2"], [], "workers", 2),
        (["--sync-bn"], [], "sync_bn", True),
        (["--no-sync-bn"], f, "sync_bn", False),
        (["--deterministic"], [], "deterministic", True),
        (["--no-deterministic"], f, "deterministic", False),
        (["--log-every", "5"], [], "log_every", 5),
        (["--val-every", "5"], [], "val_every", 5),
        (["--ckpt-every", "5"], [], "ckpt_every", 5),
        (["--seed", "3"], [], "seed", 3),
    ]


def test_every_option_lands_in_the_config_and_every_field_has_an_option(true_flags: Path) -> None:
    cases = _option_cases(true_flags)
    for option, context, path, expected in cases:
        before, after = _get(_resolved(*context), path), _get(_resolved(*context, *option), path)
        assert before != expected, f"{option}: pick a value that differs from the default {before!r}"
        assert after == expected, f"{option} set {path} to {after!r}, not {expected!r}"
    # every option of the command is in the table above ...
    command = typer.main.get_command(app).commands["train"]  # type: ignore[attr-defined]
    options = {name for param in command.params for name in (*param.opts, *param.secondary_opts)}
    assert options - NOT_SETTINGS == {option[0] for option, *_ in cases}
    # ... and every field is set by one, or is in the short, commented list of config-file-only fields
    all_fields = {f.name for f in fields(TrainConfig) if f.name != "loss"} | {f"loss.{f.name}" for f in fields(LossConfig)}
    reachable = {path for *_, path, _ in cases}
    assert reachable <= all_fields and not reachable & CONFIG_FILE_ONLY
    assert all_fields - reachable == CONFIG_FILE_ONLY


def test_the_options_function_keeps_the_recipes_loss_settings(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("iters = 5\n[loss]\nohem_thresh = 0.4\nselector_weight = 0.2\n")
    config = config_from_options(None, path, {"loss.dice_weight": 3.0, "iters": None})
    assert config.iters == 5 and config.loss.dice_weight == 3.0
    assert config.loss.ohem_thresh == 0.4 and config.loss.selector_weight == 0.2  # not reset by --dice-weight


def test_config_file_precedence(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text("recipe: paper\niters: 5\nlr: 1e-3\nloss:\n  ohem_thresh: 0.4\n  selector_weight: 0.2\n")
    config = _resolved("--config", str(path), "--iters", "7", "--dice-weight", "3")
    paper = recipe("paper")
    assert config["model"] == paper.model and config["recipe"] == "paper"  # the file's recipe is the base
    assert config["lr"] == 1e-3 and config["iters"] == 7  # recipe < file < options
    assert config["loss"] == {**paper.loss.__dict__, "ohem_thresh": 0.4, "selector_weight": 0.2, "dice_weight": 3.0}
    config = _resolved("--config", str(path), "--recipe", "cpu-quick")  # --recipe beats the file's recipe
    assert config["model"] == recipe("cpu-quick").model and config["recipe"] == "cpu-quick" and config["iters"] == 5


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("c.yaml", "lrr: 0.1\n", "Unknown setting in {path}: 'lrr' (Did you mean 'lr'?). Remove or rename it"),
        ("c.yaml", "loss:\n  ohem_tresh: 0.5\n", "'loss.ohem_tresh' (Did you mean 'ohem_thresh'"),
        ("c.yaml", "iters: abc\n", "In {path}, iters must be a whole number, not 'abc'"),
        ("c.toml", "lr = [1, 2]\n", "In {path}, lr must be a number"),
        ("c.yaml", "iters: [1,\n", "{path} is not valid YAML"),
        ("c.toml", "iters = = 1\n", "{path} is not valid TOML"),
        ("c.json", "[1, 2]", "{path} holds a list at the top level; it must map setting names to values"),
        ("missing.yaml", None, "Cannot read the config file {path}"),
    ],
)
def test_a_bad_config_file_is_a_clean_error(tmp_path: Path, name: str, text: str | None, words: str) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    result = runner.invoke(app, ["train", "--config", str(path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error:") and words.format(path=path) in _flat(result.stderr)
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("value", "words"),
    [("0.1,x", "'0.1,x' is not a list of numbers ('x' is not a number)"), ("0.1,1.5", "1.5 in '0.1,1.5' is not in [0, 1]"),
     ("nan", "nan in 'nan' is not in [0, 1]"), (",", "give at least one ratio")],
)
def test_bad_topk_ratios_are_usage_errors_in_train_and_show_hardness(tmp_path: Path, value: str, words: str) -> None:
    for command in (["train"], ["show-hardness", str(tmp_path), "--weights", "x", "--out", str(tmp_path / "o")]):
        result = runner.invoke(app, [*command, "--topk", value])
        text = _flat(result.output)
        assert result.exit_code == 2, result.output
        assert "Invalid value for --topk" in text and words in text and "e.g. 0.1,0.2,0.3,0.4" in text
    assert show_hardness.parse_ratios is params.parse_ratios  # one parser for every command


def test_a_run_config_json_reproduces_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORNET_CACHE", str(tmp_path / "cache"))  # the generated synthetic set goes here
    first, second = tmp_path / "first", tmp_path / "second"
    args = ["--data", "synth", "--synth-train", "4", "--synth-val", "1", "--synth-size", "64x128", "--crop", "64",
            "--batch", "2", "--iters", "2", "--val-every", "2", "--ckpt-every", "2", "--workers", "0", "--seed", "3",
            "--dice-weight", "0.5"]
    result = runner.invoke(app, ["train", *args, "--out", str(first)])
    assert result.exit_code == 0, result.output
    original = json.loads((first / "config.json").read_text())
    assert original["synth_train"] == 4 and original["seed"] == 3 and original["loss"]["dice_weight"] == 0.5
    result = runner.invoke(app, ["train", "--config", str(first / "config.json"), "--out", str(second)])
    assert result.exit_code == 0, result.output
    assert json.loads((second / "config.json").read_text()) == original
    assert (second / "checkpoints" / "last.pt").is_file()  # it trained
    # resuming re-reads the checkpoint's config.to_dict(): it loads, and equals the config.json's
    saved = load_checkpoint(first / "checkpoints" / "last.pt")["config"]
    assert TrainConfig.from_dict(saved) == TrainConfig.from_dict(original)
