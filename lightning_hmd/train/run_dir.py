"""Run names and directories that every rank and every requeue of a job agree on.

A run's name comes from the config (``run.name``) or, when empty, from a hash of the resolved
config plus the SLURM job id when there is one; never from a clock or a random number, which
would differ between the ranks of one job and between a job and its requeue.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path

CONFIG_HASH_LEN = 10
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def config_hash(config: Mapping) -> str:
    """A short stable hash of a resolved config (plain containers), without its ``run`` node."""
    body = {k: v for k, v in config.items() if k != "run"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:CONFIG_HASH_LEN]


def run_name(config: Mapping, env: Mapping[str, str]) -> str:
    """``run.name`` if set, else ``<config hash>`` or ``<config hash>-slurm<job id>``.

    For a SLURM array the job id is ``<array job>_<task>`` so tasks get separate runs.
    """
    name = str(config.get("run", {}).get("name") or "")
    if name:
        return _SAFE.sub("-", name)
    base = config_hash(config)
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{base}-slurm{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    if env.get("SLURM_JOB_ID"):
        return f"{base}-slurm{env['SLURM_JOB_ID']}"
    return base


def run_dir(config: Mapping, env: Mapping[str, str]) -> Path:
    """``run.root / run_name``."""
    return Path(str(config.get("run", {}).get("root") or "runs")) / run_name(config, env)


SUMMARY = "summary.json"  # written by ``train`` when it returns (fit.write_summary)
SWEEP_FILE = "sweep.json"  # written by ``sweep run`` before a trial trains


def read_summary(out: Path) -> dict | None:
    """The run's ``summary.json``, or None when it has not finished a ``train`` call."""
    path = Path(out) / SUMMARY
    return json.loads(path.read_text()) if path.is_file() else None


def read_sweep_record(out: Path) -> dict:
    """The run's ``sweep.json`` (sweep name, parameters, seed), or {} outside a sweep."""
    path = Path(out) / SWEEP_FILE
    return json.loads(path.read_text()) if path.is_file() else {}
