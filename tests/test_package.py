"""The package's public surface and what importing it costs. Its architecture (import graph, sizes) is checked
from the source in tests/test_architecture.py."""

import subprocess
import sys

import fornet_cli


def test_library_import_does_not_pull_in_the_cli_stack() -> None:
    code = (
        "import sys, fornet_cli, fornet_cli.model, fornet_cli.model.complexity\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('typer', 'rich', 'click'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_public_api() -> None:
    assert fornet_cli.__version__
    assert callable(fornet_cli.create_model) and "fornet_r101" in fornet_cli.list_models()


def test_load_weights_is_public(tmp_path) -> None:
    import torch

    from fornet_cli.weights.format import meta_for, save_pretrained

    model = fornet_cli.create_model("fornet_mbv3", num_classes=2).eval()
    save_pretrained(model, tmp_path, meta_for(model, ["a", "b"]))
    loaded = fornet_cli.load_weights(tmp_path)
    assert loaded.meta.class_names == ["a", "b"]
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.model.state_dict().values()))


def test_the_repository_passes_ruff() -> None:
    """The lint settings in pyproject.toml hold for every file (ruff is a dev dependency)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(root)], capture_output=True,
                            text=True, cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
