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
    from fixtures.render import offscreen_gl_problem

    problem = offscreen_gl_problem()
    require(problem is None, f"headless rendering unavailable ({problem}); see Makefile")


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory, offscreen_gl: None) -> Path:
    """A small rendered synthetic dataset (8 training clips of 24 frames, 2 validation, 1 test,
    200 mocap poses) and its body model, written once per session."""
    from lightning_hmd.commands import main

    out = tmp_path_factory.mktemp("data") / "synthetic"
    args = ["data", "synth", "--out", str(out), "--clips", "8", "--val-clips", "2",
            "--test-clips", "1", "--frames", "24", "--mocap", "200", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    return out


def tiny_sweep(name: str) -> str:
    """A W&B grid sweep over ``model.temporal.num_blocks`` 0 and 1 on the tiny preset."""
    return f"""\
name: {name}
program: lightning-hmd
method: grid
metric: {{name: val/pa_mpjpe, goal: minimize}}
parameters:
  model.temporal.num_blocks: {{values: [0, 1]}}
command: ["${{env}}", "lightning-hmd", "train", "--preset", "tiny", "${{args_no_hyphens}}"]
"""


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The fault-injection suite's summary line (when it ran), and its table written to
    ``$LIGHTNING_HMD_FAULT_TABLE`` when that is set."""
    import sys

    faults = sys.modules.get("fixtures.faults")
    if faults is None or not faults.RESULTS:
        return
    line, table = faults.summary(faults.RESULTS)
    terminalreporter.write_line(line)
    if os.environ.get("LIGHTNING_HMD_FAULT_TABLE"):
        Path(os.environ["LIGHTNING_HMD_FAULT_TABLE"]).write_text(line + "\n\n" + table)
