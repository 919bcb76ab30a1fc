import json

import pytest
import typer
from typer.testing import CliRunner

import fornet_cli
from fornet_cli import __version__
from fornet_cli.cli import app
from fornet_cli.cli.app import FornetGroup
from fornet_cli.errors import DataError

runner = CliRunner()


def test_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "models" in result.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_models_json_lists_every_variant_with_parameters() -> None:
    result = runner.invoke(app, ["models", "--json", "--size", "256x512"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert list(rows) == fornet_cli.list_models()  # every registered variant, in registration order
    assert rows["fornet_r101"]["parameters"] == 50_168_948
    assert rows["fornet_r101"]["paper"] is True and rows["fornet_mbv3"]["paper"] is False
    assert all(r["gmacs"] > 0 for r in rows.values())
    # GMACs scale with the input area: 512x512 paper model is about 225 GMACs (docs/MODEL.md)
    assert 220 < rows["fornet_r101"]["gmacs"] * 2 < 230


def test_models_table_goes_to_stderr() -> None:
    result = runner.invoke(app, ["models", "--size", "64x64"])
    assert result.exit_code == 0
    assert result.stdout == "" and "fornet_r101" in result.stderr


def test_bad_size_is_a_usage_error() -> None:
    result = runner.invoke(app, ["models", "--size", "12y"])
    assert result.exit_code == 2 and "HEIGHTxWIDTH" in result.output


def _failing_app() -> typer.Typer:
    demo = typer.Typer(cls=FornetGroup)

    @demo.command()
    def boom() -> None:
        raise DataError("the folder x has no images. Point --root at a Cityscapes folder.")

    @demo.command()
    def other() -> None:
        pass

    return demo


def test_library_errors_print_one_line_and_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORNET_DEBUG", raising=False)
    result = runner.invoke(_failing_app(), ["boom"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: the folder x has no images")
    assert "Traceback" not in result.output


def test_debug_shows_the_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORNET_DEBUG", "1")
    result = runner.invoke(_failing_app(), ["boom"])
    assert result.exit_code == 1
    assert isinstance(result.exception, DataError)
