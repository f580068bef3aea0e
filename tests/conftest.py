"""Shared test fixtures: no model files, no network, no W&B."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "disabled")


@pytest.fixture(scope="session")
def synthetic_body_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory holding the synthetic body model (written once per session)."""
    from lightning_hmd.body.synth import write_synthetic_model

    return write_synthetic_model(tmp_path_factory.mktemp("body") / "synthetic")


def require(available: bool, reason: str) -> None:
    """Skip a test whose system requirement is missing here, but fail it when ``CI`` is set.

    CI installs every requirement (``make env`` installs the Debian packages), so a missing
    one there is a broken set-up, not a reason to skip.
    """
    if available:
        return
    if os.environ.get("CI"):
        pytest.fail(f"missing in CI: {reason}")
    pytest.skip(reason)



@pytest.fixture(scope="session")
def require_system():  # noqa: ANN201 - returns `require`
    """`require(available, reason)`: skip here, fail under CI (see `require`)."""
    return require
