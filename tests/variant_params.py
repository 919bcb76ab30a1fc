"""Per-variant tests take their variants from the registry: a test with a ``variant`` argument runs once for
every name :func:`fornet_cli.list_models` returns when the tests are collected (tests/conftest.py calls
:func:`parametrize_variants`). A variant added with ``register_model`` is covered without touching a test.

Variants with more than :data:`SLOW_ABOVE_PARAMETERS` parameters are marked ``slow`` (CI runs them too):
their size is counted on the ``meta`` device, which allocates nothing.
"""

from __future__ import annotations

import functools

import pytest
import torch

SLOW_ABOVE_PARAMETERS = 20_000_000


@functools.cache
def _parameters(name: str, config: object) -> int:  # the config in the key: re-registering a name re-counts
    import fornet_cli

    with torch.device("meta"):
        model = fornet_cli.create_model(name)
    return sum(p.numel() for p in model.parameters())


def variant_params() -> list:
    """One ``pytest.param`` per registered variant, in registration order; large ones marked ``slow``."""
    import fornet_cli
    from fornet_cli.model import get_entry

    params = []
    for name in fornet_cli.list_models():
        heavy = _parameters(name, get_entry(name).config) > SLOW_ABOVE_PARAMETERS
        params.append(pytest.param(name, id=name, marks=[pytest.mark.slow] if heavy else []))
    return params


def parametrize_variants(metafunc: pytest.Metafunc) -> None:
    """The ``pytest_generate_tests`` hook's work: parametrize a test's ``variant`` argument."""
    if "variant" in metafunc.fixturenames:
        metafunc.parametrize("variant", variant_params())
