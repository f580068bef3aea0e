"""A W&B sweep file as an Optuna study: the shared state of ``lightning-hmd sweep agent``.

W&B's engine (the ``sweeps`` package behind ``wandb[sweeps]``) pins numpy < 2 and cannot be
installed beside this package, and ``wandb agent`` needs a reachable controller; Optuna is the
maintained engine used instead. The mapping:

- ``method``: ``grid`` -> every combination enqueued once in the study, each taken by one
  agent (Optuna hands a waiting trial to one caller only); ``random`` -> ``RandomSampler``;
  ``bayes`` -> ``TPESampler`` (Bayesian optimisation with tree-structured Parzen estimators).
- ``early_terminate: {type: hyperband, min_iter, eta, max_iter}`` -> ``HyperbandPruner``
  with ``min_resource=min_iter``, ``reduction_factor=eta``, ``max_resource=max_iter``; one
  unit of resource is one report of the sweep metric (one validation), W&B's iteration.
- distributions: ``values`` (categorical), ``uniform``, ``int_uniform``, ``log_uniform_values``
  (bounds are values), ``log_uniform`` (bounds are natural-log exponents), ``q_uniform``
  (a step ``q``), ``q_log_uniform_values`` (log-uniform, then rounded to a multiple of ``q`` as
  W&B does; Optuna has no log scale with a step).

The study is named after the sweep; its storage is a SQLite file beside the sweep's runs by
default, or any SQLAlchemy URL (PostgreSQL on a cluster) shared by every agent.
"""

from __future__ import annotations

import itertools
import math
import os
import socket
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from lightning_hmd.experiments.sweeps import Parameter, Sweep, SweepError

READY = "lightning_hmd.ready"  # study attribute: set once the study's grid is enqueued
QUANTISED = "lightning_hmd.quantised"  # trial attribute: values rounded to their q


def default_storage(run_root: str | Path, sweep: Sweep) -> str:
    """``sqlite:///<run root>/<sweep name>.optuna.db``: the study beside the sweep's runs."""
    return f"sqlite:///{Path(run_root).resolve() / (sweep.name + '.optuna.db')}"


def distribution(p: Parameter) -> BaseDistribution:
    """The Optuna distribution of one swept key (see the module docstring)."""
    if p.values is not None:
        return CategoricalDistribution(_choices(p))
    lo, hi = p.bounds
    d = p.distribution
    if d == "uniform":
        return FloatDistribution(lo, hi)
    if d == "int_uniform":
        return IntDistribution(int(lo), int(hi))
    if d == "log_uniform_values":
        return FloatDistribution(lo, hi, log=True)
    if d == "log_uniform":
        return FloatDistribution(math.exp(lo), math.exp(hi), log=True)
    if d == "q_uniform":
        return FloatDistribution(lo, hi, step=p.q)
    if d == "q_log_uniform_values":
        return FloatDistribution(lo, hi, log=True)
    raise SweepError(
        f"parameters.{p.key}: distribution {d!r} is not supported (values, uniform, "
        "int_uniform, log_uniform, log_uniform_values, q_uniform, q_log_uniform_values)"
    )


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def _choices(p: Parameter) -> list:
    """A categorical key's choices as Optuna stores them: the values themselves, or, when one
    is a list or mapping (``model.delta_t``), every value as the text W&B passes (``str``)."""
    if all(_scalar(v) for v in p.values):
        return list(p.values)
    return [str(v) for v in p.values]


def stored(p: Parameter, value: Any) -> Any:
    """``value`` of key ``p`` as the study stores it (see :func:`_choices`)."""
    return value if p.values is None or all(_scalar(v) for v in p.values) else str(value)


def trial_values(sweep: Sweep, trial: optuna.Trial) -> dict[str, Any]:
    """The trial's value of every swept key, suggested from its distribution (a grid trial
    holds its values already); ``q_log_uniform_values`` rounded to a multiple of ``q``."""
    values = {}
    for p in sweep.parameters:
        value = _suggest(trial, p.key, distribution(p))
        if p.values is not None:
            value = p.values[_choices(p).index(value)]
        if p.distribution == "q_log_uniform_values":
            value = round(value / p.q) * p.q
            trial.set_user_attr(f"{QUANTISED}.{p.key}", value)
        values[p.key] = value
    return values


def _suggest(trial: optuna.Trial, key: str, d: BaseDistribution) -> Any:
    if isinstance(d, CategoricalDistribution):
        return trial.suggest_categorical(key, d.choices)
    if isinstance(d, IntDistribution):
        return trial.suggest_int(key, d.low, d.high, step=d.step, log=d.log)
    return trial.suggest_float(key, d.low, d.high, step=d.step, log=d.log)


def agent_seed(sweep: Sweep) -> int:
    """The sampler seed of this agent: the sweep's name and this process (host, pid), so two
    agents on one study never draw the same sequence of points (one seed for all would hand
    every agent the same random or TPE start-up draws)."""
    agent = f"{sweep.name}|{socket.gethostname()}|{os.getpid()}"
    return zlib.crc32(agent.encode())


def _sampler(sweep: Sweep, seed: int | None) -> optuna.samplers.BaseSampler:
    seed = agent_seed(sweep) if seed is None else seed
    if sweep.method == "bayes":
        return optuna.samplers.TPESampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)  # grid trials are enqueued, not sampled


def _pruner(sweep: Sweep) -> optuna.pruners.BasePruner:
    et = sweep.early_terminate
    if et is None:
        return optuna.pruners.NopPruner()
    return optuna.pruners.HyperbandPruner(
        min_resource=et.min_iter, max_resource=et.max_iter or "auto", reduction_factor=et.eta
    )


def grid_points(sweep: Sweep) -> Iterator[dict[str, Any]]:
    """Every combination of a grid sweep's values, in file order."""
    continuous = [p.key for p in sweep.parameters if p.values is None]
    if continuous:
        raise SweepError(f"{sweep.path}: a grid needs values for {continuous}")
    keys = [p.key for p in sweep.parameters]
    for combo in itertools.product(*(p.values for p in sweep.parameters)):
        yield dict(zip(keys, combo, strict=True))


def connect(url: str, attempts: int = 10) -> optuna.storages.RDBStorage:
    """The study database at ``url``; a SQLite file's folder is made first. Agents that start
    together race to create Optuna's tables (PostgreSQL refuses the loser's ``CREATE``), so a
    refused first connection is tried again."""
    import sqlalchemy.exc

    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def open_study(
    sweep: Sweep, storage: str, wait_s: float = 120.0, seed: int | None = None
) -> optuna.Study:
    """The sweep's study in ``storage``, created by the first agent to come; ``seed`` fixes
    this agent's sampler (default :func:`agent_seed`, different for every agent).

    The creator enqueues a grid's combinations, then marks the study ready; an agent that
    finds the study already there waits for that mark, so no agent samples a grid point of
    its own while the grid is being written.
    """
    direction = "maximize" if sweep.goal == "maximize" else "minimize"
    common = {
        "storage": connect(storage),
        "study_name": sweep.name,
        "sampler": _sampler(sweep, seed),
        "pruner": _pruner(sweep),
    }
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(direction=direction, load_if_exists=False, **common)
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(**common)
        deadline = time.time() + wait_s
        while not study.user_attrs.get(READY):
            if time.time() > deadline:
                raise SweepError(f"study {sweep.name} in {storage} never became ready") from None
            time.sleep(0.5)
        return study
    study.set_user_attr("method", sweep.method)
    study.set_user_attr("metric", sweep.metric)
    if sweep.method == "grid":
        for point in grid_points(sweep):
            study.enqueue_trial({p.key: stored(p, point[p.key]) for p in sweep.parameters})
    study.set_user_attr(READY, True)
    return study


def study_done(study: optuna.Study, sweep: Sweep) -> bool:
    """Whether no trial is left to hand out: a grid with nothing waiting, or ``run_cap``
    trials made."""
    states = [t.state for t in study.get_trials(deepcopy=False)]
    if sweep.method == "grid":
        return optuna.trial.TrialState.WAITING not in states
    return sweep.run_cap is not None and len(states) >= sweep.run_cap
