"""benchmarks/run.py: every script has its CPU arguments; FIGURE lines are written and read back."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import figures  # noqa: E402
import run  # noqa: E402


def test_every_benchmark_script_is_in_the_run():
    on_disk = {p.stem for p in BENCHMARKS.glob("*.py")} - {"run", "figures", "harness"}
    assert set(run.scripts()) == on_disk
    assert on_disk <= set(run.RUNS), sorted(on_disk - set(run.RUNS))


def test_figure_lines_round_trip():
    met = figures.figure_line("step / GEMM", "0.74 (range 0.71-0.80)", ">= 0.60", True)
    assert met == "FIGURE: step / GEMM = 0.74 (range 0.71-0.80) (goal: >= 0.60, met)"
    missed = figures.figure_line("predict", "1.9x", ">= 2.3x", False)
    assert missed == "FIGURE: predict = 1.9x (goal: >= 2.3x, not met)"
    plain = figures.figure_line("GFLOP", "171.0")
    assert plain == "FIGURE: GFLOP = 171.0 (no goal)"
    output = f"device: CPU\n{met}\nnoise FIGURE: not at the start\n{plain}\n"
    assert run.figures(output) == [met, plain]
    with pytest.raises(ValueError, match="both goal and met"):
        figures.figure_line("x", "1", goal=">= 2")


def test_an_unknown_name_is_refused(capsys):
    assert run.main(["no_such_benchmark"]) == 2
    assert "unknown benchmark(s): no_such_benchmark" in capsys.readouterr().err
