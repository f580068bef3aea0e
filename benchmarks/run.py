"""Run the benchmarks one after another and print every figure they report, with its goal.

Usage::

    .venv/bin/python benchmarks/run.py [NAME ...]     # names without .py; default: all

Each script runs with the arguments of :data:`RUNS` (sized so that all of them finish in
under 10 minutes on 2 CPU cores), its output streamed as it comes; at the end the lines
``FIGURE: <name> = <value> (goal: ...)`` of every script are printed again together, with
each script's wall time. The exit status is non-zero when a script failed (a goal that is
not met is a figure, not a failure). Record what they print in
``benchmarks/results/<name>.md``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIGURE_PREFIX = "FIGURE:"
# Not benchmarks: this runner, the FIGURE printer and the harness the scripts share.
NOT_BENCHMARKS = {"run", "figures", "harness"}
# Every benchmark script and its arguments for the CPU run; on a GPU machine run
# ``benchmarks/gpu.sh`` instead. A script that is missing here fails the runner (and its test),
# so that no benchmark is left out of the run.
RUNS: dict[str, list[str]] = {
    "step_efficiency": ["--batches", "4"],
    "predict_throughput": [],
    "ddp_allreduce": [],
    "memory_rss": [],
    "body_joints_only": ["--repeats", "10"],
    "reader_throughput": ["--batches", "30"],
    "data_prep_throughput": [],
    "train_step_throughput": ["--batches", "20"],
    "gpu_suite": ["--cpu-check"],
    "hmr_stage_precision": [],
}


def scripts() -> list[str]:
    """The benchmark scripts in this folder, by name."""
    return sorted(p.stem for p in HERE.glob("*.py") if p.stem not in NOT_BENCHMARKS)


def figures(output: str) -> list[str]:
    """The FIGURE lines of a script's output, in order."""
    return [line.strip() for line in output.splitlines() if line.startswith(FIGURE_PREFIX)]


def run_one(name: str) -> tuple[int, float, list[str]]:
    """Run one script (its output passed through); returns (status, seconds, FIGURE lines)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, str(HERE / f"{name}.py"), *RUNS[name]],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        lines.append(line)
    return proc.wait(), time.perf_counter() - start, figures("".join(lines))


def main(names: list[str]) -> int:
    known = scripts()
    unlisted = sorted(set(known) - set(RUNS))
    if unlisted:
        print(f"benchmark(s) without arguments in RUNS: {', '.join(unlisted)}", file=sys.stderr)
        return 2
    chosen = names or [n for n in RUNS if n in known]
    missing = sorted(set(chosen) - set(known))
    if missing:
        print(f"unknown benchmark(s): {', '.join(missing)}", file=sys.stderr)
        return 2
    status, summary, total = 0, [], 0.0
    for name in chosen:
        print(f"== {name} {' '.join(RUNS[name])}", flush=True)
        code, seconds, found = run_one(name)
        total += seconds
        status |= code
        failed = f", FAILED with status {code}" if code else ""
        summary.append(f"-- {name} ({seconds:.0f} s{failed})")
        summary += found or ["   (no FIGURE lines)"]
    print(f"\n== figures ({total:.0f} s in all)")
    print("\n".join(summary))
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
