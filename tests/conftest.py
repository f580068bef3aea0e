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
def offscreen_gl() -> None:
    """Headless OpenGL for tests that render (pyrender over OSMesa): skip here, fail in CI."""
    from lightning_hmd.data.synth.render import offscreen_gl_problem

    problem = offscreen_gl_problem()
    require(problem is None, f"headless rendering unavailable ({problem}); see Makefile")
