"""Run names and directories that every rank and every requeue of a job agree on, and what
a resumed run may change of its config.

A run's name comes from the config (``run.name``) or, when empty, from a hash of the resolved
config plus the SLURM job id when there is one; never from a clock or a random number, which
would differ between the ranks of one job and between a job and its requeue.

A run resumes from ``last.ckpt`` only with the config that checkpoint was trained with (the
checkpoint holds it), apart from :data:`RESUME_SAFE_KEYS`; anything else is refused with
every changed key listed, unless ``train`` is told to accept it (``--allow-config-change``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path

from omegaconf import OmegaConf

from lightning_hmd.config import dotted_keys, to_container
from lightning_hmd.config_tree import Config
from lightning_hmd.errors import RunError

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


# Dotted keys a resumed run may change without --allow-config-change: none of them changes
# the batches the run trains on or the updates its weights get.
RESUME_SAFE_KEYS = frozenset(
    {
        # the budget: resuming with a larger one is how a run is continued
        "trainer.max_batches",
        # how often the run writes scalars, checkpoints and keypoint panels
        "trainer.log_every_batches",
        "trainer.ckpt_every_batches",
        "trainer.image_every_batches",
        # validation only reads the model (eval mode, no gradients; dropout is seeded per batch,
        # so it draws nothing from the training's randomness)
        "trainer.val_every_batches",
        "trainer.val_batches",
        "trainer.progress_bar",  # the console only
        # the tolerance for damaged data: raising it lets a run that stopped on it go on
        "data.max_skip_fraction",
        # where the run lives and whether to resume: the same directory is the same run (a
        # derived name hashes the config without run.*, and may be given later as run.name)
        "run.root",
        "run.name",
        "run.resume",
        "run.collective_timeout_s",  # how long ranks wait for each other
    }
)
# Not in the set: data.num_workers, because every loader worker reads its own slice of the
# shards with its own random stream, so the number of workers decides which windows make up
# each batch. W&B online or offline is chosen by the environment (WANDB_MODE, an API key),
# not by the config, so switching it needs no key here.

_ABSENT = object()


class ConfigChangedError(RunError, ValueError):
    """A run would resume with another config than its checkpoint's; lists the keys."""


def _show(value: object) -> str:
    return "<absent>" if value is _ABSENT else json.dumps(value, default=str)


def _leaves(config: Mapping) -> dict:
    """Dotted keys to values; an empty node has no leaves."""
    return {k: v for k, v in dotted_keys(dict(config)).items() if v != {}}


def config_changes(
    recorded: Mapping, current: Mapping, safe: frozenset[str] = RESUME_SAFE_KEYS
) -> list[str]:
    """``key: old -> new`` for every dotted key (``model.temporal.num_blocks``) whose value
    differs between two nested configs, in key order, leaving out the ``safe`` keys. A key the
    record lacks (one added to the schema since the run started) counts at its schema default;
    one only the record has shows as ``<absent>`` on the new side."""
    defaults = _leaves(to_container(OmegaConf.structured(Config)))
    old, new = {**defaults, **_leaves(recorded)}, _leaves(current)
    changes = []
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key, _ABSENT), new.get(key, _ABSENT)
        if key not in safe and a != b:
            changes.append(f"{key}: {_show(a)} -> {_show(b)}")
    return changes


def check_resume_config(
    recorded: Mapping, current: Mapping, ckpt: str | Path, allow: bool = False
) -> list[str]:
    """The changes :func:`config_changes` finds, returned when ``allow`` (or when there are
    none) for the log.

    Raises:
        ConfigChangedError: there are changes and ``allow`` is False; lists them all.
    """
    changes = config_changes(recorded, current)
    if changes and not allow:
        lines = "\n  ".join(changes)
        raise ConfigChangedError(
            f"refusing to resume: {ckpt} was trained with another config "
            "(--allow-config-change resumes anyway; run.resume=false or another run.name "
            f"starts a new run):\n  {lines}"
        )
    return changes
