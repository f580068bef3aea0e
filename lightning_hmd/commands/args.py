"""Argument types and groups the commands share: config sources and ``key=value`` overrides,
what a SLURM job asks for, the trained model of ``predict`` and ``hallucinate``, and command
groups (``data``, ``body``, ``slurm``, ``sweep``) with subcommands of their own."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from omegaconf import DictConfig

from lightning_hmd.config import available_presets, load_config


def command_group(
    sub: argparse._SubParsersAction, name: str, help: str
) -> argparse._SubParsersAction:
    """The subcommands of the command group ``name``; the chosen one is ``ns.<name>_command``."""
    return sub.add_parser(name, help=help).add_subparsers(dest=f"{name}_command", required=True)


def override(text: str) -> str:
    """The argument type of a ``key=value`` config override."""
    key, sep, _ = text.partition("=")
    if not sep or not key or key.startswith("-"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a key=value override")
    return text


def config_source(text: str) -> str:
    """The argument type of a config source: a ``*.yaml``/``*.yml`` file or an override."""
    if text.endswith((".yaml", ".yml")) and "=" not in text:
        return text
    try:
        return override(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a YAML file nor a key=value override"
        ) from None


def split_sources(sources: Sequence[str]) -> tuple[list[str], list[str]]:
    """Config sources -> (YAML files, overrides), each in the order given."""
    files = [s for s in sources if "=" not in s]
    return files, [s for s in sources if "=" in s]


def add_config_args(p: argparse.ArgumentParser, *, files: bool = True) -> None:
    """``--preset NAME`` and the config sources (YAML files too when ``files``)."""
    p.add_argument(
        "--preset", choices=available_presets(), default=None, help="named preset (paper, tiny)"
    )
    if files:
        p.add_argument("overrides", nargs="*", type=config_source, metavar="CONFIG.yaml|key=value")
    else:
        add_overrides(p)


def add_overrides(p: argparse.ArgumentParser, help: str | None = None) -> None:
    """Trailing ``key=value`` overrides (they may also follow the options)."""
    p.add_argument("overrides", nargs="*", type=override, metavar="key=value", help=help)


def resolve(ns: argparse.Namespace) -> DictConfig:
    """The config of ``--preset`` and the sources, validated."""
    files, overrides = split_sources(ns.overrides)
    return load_config(ns.preset, files, overrides)


def add_job_args(p: argparse.ArgumentParser) -> None:
    """What a SLURM job asks for (``slurm submit``, ``sweep run --slurm``)."""
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--gpus-per-node", type=int, default=1, help="0: CPU tasks")
    p.add_argument("--tasks-per-node", type=int, default=1, help="CPU tasks when no GPUs")
    p.add_argument("--cpus-per-task", type=int, default=8, help="loader workers + 1")
    p.add_argument("--time", default="1-00:00:00", help="SLURM time limit")
    p.add_argument("--partition", default="")
    p.add_argument("--account", default="")


def job_spec(ns: argparse.Namespace):  # noqa: ANN201 - JobSpec, imported lazily
    """The :class:`~lightning_hmd.experiments.slurm.JobSpec` of :func:`add_job_args`' options."""
    from lightning_hmd.experiments.slurm import JobSpec

    return JobSpec(
        nodes=ns.nodes,
        gpus_per_node=ns.gpus_per_node,
        cpu_tasks_per_node=ns.tasks_per_node,
        cpus_per_task=ns.cpus_per_task,
        time=ns.time,
        partition=ns.partition,
        account=ns.account,
    )


def add_model_args(p: argparse.ArgumentParser) -> None:
    """The trained model of ``predict`` and ``hallucinate``."""
    p.add_argument("--ckpt", required=True, help="a lightning_hmd checkpoint")
    p.add_argument(
        "--encoder",
        default=None,
        help="HMR init file / encoder weights (models trained on features)",
    )


def box(text: str) -> list[float]:
    """The argument type of ``--box x0,y0,x1,y1`` (pixels)."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4:
        raise argparse.ArgumentTypeError(f"{text!r}: expected x0,y0,x1,y1 in pixels")
    return values
