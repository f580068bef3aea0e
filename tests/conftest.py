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
