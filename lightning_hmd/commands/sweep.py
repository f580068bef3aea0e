"""``lightning-hmd sweep run`` and ``sweep agent``: a W&B sweep file's trials without a W&B
server: one after another or as SLURM jobs, or by agents sharing an Optuna study."""

from __future__ import annotations

import argparse

from lightning_hmd.commands.args import add_job_args, add_overrides, command_group, job_spec
from lightning_hmd.errors import ConfigError


def run(ns: argparse.Namespace) -> int:
    from lightning_hmd.experiments.sweep_run import run_sweep, submit_agents
    from lightning_hmd.experiments.sweeps import load_sweep, parse_where, with_preset

    sweep = with_preset(load_sweep(ns.sweep), ns.preset)

    if ns.agents is not None:
        if not ns.slurm:
            raise ConfigError("--agents K submits K agents as a SLURM array: add --slurm")
        if ns.where:
            raise ConfigError("--where selects trials of a local or --slurm run, not agents")
        submit_agents(
            sweep,
            ns.agents,
            job_spec(ns),
            storage=ns.storage,
            overrides=ns.overrides,
            count=ns.count,
            dry_run=ns.dry_run,
        )
        return 0

    runs = run_sweep(
        sweep,
        seeds=ns.seeds,
        count=ns.count,
        overrides=ns.overrides,
        dry_run=ns.dry_run,
        slurm=job_spec(ns) if ns.slurm else None,
        where=parse_where(ns.where),
    )
    statuses = ("trained", "submitted", "skipped", "planned")
    counts = {s: sum(r.status == s for r in runs) for s in statuses}
    print(", ".join(f"{v} {k}" for k, v in counts.items() if v) or "no trials")
    return 0


def run_agent(ns: argparse.Namespace) -> int:
    from lightning_hmd.experiments.sweep_agent import run_agent
    from lightning_hmd.experiments.sweeps import load_sweep, with_preset

    ran = run_agent(
        with_preset(load_sweep(ns.sweep), ns.preset),
        storage=ns.storage,
        count=ns.count,
        overrides=ns.overrides,
        seed=ns.seed,
    )
    states = ("complete", "pruned", "stopped")
    counts = {s: sum(r.state == s for r in ran) for s in states}
    print(", ".join(f"{v} {k}" for k, v in counts.items() if v) or "no trial left")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    sweep = command_group(sub, "sweep", "W&B sweep files run locally")
    p = sweep.add_parser(
        "run",
        help="run a sweep's trials one after another (finished trials are skipped)",
        description="Grid sweeps run every combination; random ones run --count or run_cap "
        "draws. Each trial gets the arguments wandb agent would pass, then seed=1..K.",
    )
    p.add_argument("--seeds", type=int, default=1, help="seeds per configuration (1..K)")
    p.add_argument("--count", type=int, default=None, help="trials (random sweeps: draws)")
    p.add_argument("--dry-run", action="store_true", help="print the trials' commands")
    p.add_argument(
        "--preset",
        default=None,
        help="train the trials from this preset instead of the one the sweep's command names",
    )
    p.add_argument(
        "--where",
        action="append",
        metavar="KEY=VALUE",
        help="grid sweeps: only the trials where a swept key has this value (repeatable)",
    )
    p.add_argument(
        "--slurm",
        action="store_true",
        help="submit each unfinished trial as its own SLURM job (options below) instead",
    )
    p.add_argument(
        "--agents",
        type=int,
        default=None,
        help="with --slurm: a job array of K `sweep agent` tasks on one shared study",
    )
    p.add_argument("--storage", default=None, help="with --agents: the study's database URL")
    add_job_args(p)
    p.add_argument("sweep", metavar="SWEEP.yaml", help="a sweeps/*.yaml file")
    add_overrides(p, help="overrides for every trial")
    p.set_defaults(func=run)

    p = sweep.add_parser(
        "agent",
        help="as wandb agent: trials from a shared study until none is left (Optuna)",
        description="Grid, random and bayes (TPE) sweeps; early_terminate hyperband prunes "
        "trials at validations. Agents on any machine share the study in --storage.",
    )
    p.add_argument(
        "--storage",
        default=None,
        help="the study's database URL (default: sqlite:///<run.root>/<sweep name>.optuna.db; "
        "postgresql://... for clusters)",
    )
    p.add_argument("--count", type=int, default=None, help="trials this agent runs at most")
    p.add_argument(
        "--preset",
        default=None,
        help="train the trials from this preset instead of the one the sweep's command names",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="this agent's sampler seed (reproducible draws; default: one of its own)",
    )
    p.add_argument("sweep", metavar="SWEEP.yaml", help="a sweeps/*.yaml file")
    add_overrides(p, help="overrides for every trial")
    p.set_defaults(func=run_agent)
