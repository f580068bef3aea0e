"""W&B sweep files (``sweeps/*.yaml``): reading them and forming a trial's overrides.

A sweep file is W&B's sweep configuration whose parameter names are dotted keys of the
config tree; the command passes them as ``${args_no_hyphens}``, i.e. ``key=value`` with the
value formatted by Python's ``str`` (W&B's ``create_sweep_command_args``), which
:func:`lightning_hmd.config.load_config` reads as overrides. :func:`override` formats a
value the same way, so a local run of a trial gets exactly the arguments a ``wandb agent``
would pass.
"""

from __future__ import annotations

import dataclasses
import itertools
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from lightning_hmd.errors import ConfigError

METHODS = ("grid", "random", "bayes")
ARGS_MACRO = "${args_no_hyphens}"


class SweepError(ConfigError):
    """A sweep file that W&B or this package cannot run (names the file and the key)."""


# the config keys of each temporal encoder's own sizes (models/temporal_registry.py): a sweep
# over one of them trains the same model in every trial when another encoder is selected
ENCODER_KEYS = {
    "hmmr_conv": ("model.temporal.num_blocks", "model.temporal.kernel_size",
                  "model.temporal.num_groups"),
    "gru": ("model.temporal.gru.",),
    "tcmr": ("model.temporal.tcmr.",),
    "transformer": ("model.temporal.transformer.",),
}  # fmt: skip


def check_encoder_keys(sweep: Sweep, kind: str) -> None:
    """Refuse a trial whose encoder (``model.temporal.kind``) does not read a key the sweep
    varies (e.g. ``temporal_depth``'s ``model.temporal.num_blocks`` with ``gru``): every
    trial would train the same model.

    Raises:
        SweepError: naming the sweep, the key, its encoder and the one selected.
    """
    for p in sweep.parameters:
        if p.values is not None and len(p.values) < 2:
            continue  # a fixed value is no ablation
        owner = next(
            (k for k, keys in ENCODER_KEYS.items() if any(p.key.startswith(x) for x in keys)),
            None,
        )
        if owner is not None and owner != kind:
            raise SweepError(
                f"{sweep.path}: sweeps {p.key}, a size of the {owner} temporal encoder, but "
                f"the trials train model.temporal.kind={kind}, which does not read it (every "
                f"trial would train the same model); sweep that encoder's own keys "
                f"({', '.join(ENCODER_KEYS.get(kind, ()) or ('none: it has no sizes',))})"
            )


@dataclass(frozen=True)
class Parameter:
    """One swept key: its grid ``values`` (or one fixed value), or a ``distribution`` with
    ``bounds`` (min, max) for random and Bayesian search."""

    key: str
    values: tuple | None = None
    distribution: str | None = None
    bounds: tuple[float, float] | None = None
    q: float | None = None  # the step of W&B's q_* distributions


@dataclass(frozen=True)
class Sweep:
    """A parsed sweep file."""

    name: str
    method: str
    metric: str
    goal: str
    parameters: tuple[Parameter, ...]
    command: tuple[str, ...]
    run_cap: int | None
    path: Path
    early_terminate: EarlyTerminate | None = None


@dataclass(frozen=True)
class EarlyTerminate:
    """W&B's ``early_terminate: {type: hyperband, min_iter, eta, max_iter}``: iterations are
    the times the sweep metric was reported (one per validation)."""

    min_iter: int
    eta: int = 3
    max_iter: int | None = None


def _early_terminate(path: Path, spec: Any) -> EarlyTerminate | None:
    if spec is None:
        return None
    if not isinstance(spec, dict) or spec.get("type") != "hyperband":
        raise SweepError(f"{path}: early_terminate must be {{type: hyperband, ...}}, got {spec!r}")
    if "min_iter" not in spec:
        raise SweepError(f"{path}: early_terminate needs min_iter (the first bracket)")
    et = EarlyTerminate(int(spec["min_iter"]), int(spec.get("eta", 3)), spec.get("max_iter"))
    if et.min_iter < 1 or et.eta < 2:
        raise SweepError(f"{path}: early_terminate needs min_iter >= 1 and eta >= 2, got {spec}")
    return et


def override(key: str, value: Any) -> str:
    """The ``key=value`` argument W&B's ``${args_no_hyphens}`` passes for a value."""
    return f"{key}={value}"


def _parameter(path: Path, key: str, spec: Any) -> Parameter:
    if not isinstance(spec, dict):
        raise SweepError(f"{path}: parameters.{key} must be a mapping, got {spec!r}")
    if "values" in spec:
        if not isinstance(spec["values"], list) or not spec["values"]:
            raise SweepError(f"{path}: parameters.{key}.values must be a non-empty list")
        return Parameter(key, values=tuple(spec["values"]))
    if "value" in spec:
        return Parameter(key, values=(spec["value"],))
    if "min" in spec and "max" in spec:
        lo, hi = spec["min"], spec["max"]
        default = "int_uniform" if isinstance(lo, int) and isinstance(hi, int) else "uniform"
        dist = spec.get("distribution", default)
        q = spec.get("q", 1.0 if dist.startswith("q_") else None)
        return Parameter(key, distribution=dist, bounds=(lo, hi), q=q)
    raise SweepError(f"{path}: parameters.{key} needs values, value or min/max")


def load_sweep(path: str | Path) -> Sweep:
    """Read and check a sweep file.

    Raises:
        SweepError: a missing or malformed key, naming the file and the key.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise SweepError(f"{path}: cannot read the sweep file ({err})") from None
    if not isinstance(raw, dict):
        raise SweepError(f"{path}: a sweep file is a mapping")
    for key in ("method", "metric", "parameters", "command"):
        if key not in raw:
            raise SweepError(f"{path}: missing {key!r}")
    if raw["method"] not in METHODS:
        raise SweepError(f"{path}: method must be one of {METHODS}, got {raw['method']!r}")
    metric = raw["metric"]
    if not isinstance(metric, dict) or "name" not in metric:
        raise SweepError(f"{path}: metric needs a name")
    command = tuple(str(c) for c in raw["command"])
    if ARGS_MACRO not in command:
        raise SweepError(f"{path}: command must pass {ARGS_MACRO} (dotted key=value overrides)")
    params = raw["parameters"]
    if not isinstance(params, dict) or not params:
        raise SweepError(f"{path}: parameters must be a non-empty mapping")
    return Sweep(
        name=str(raw.get("name") or path.stem),
        method=raw["method"],
        metric=str(metric["name"]),
        goal=str(metric.get("goal", "minimize")),
        parameters=tuple(_parameter(path, k, v) for k, v in params.items()),
        command=command,
        run_cap=raw.get("run_cap"),
        path=path,
        early_terminate=_early_terminate(path, raw.get("early_terminate")),
    )


@dataclass(frozen=True)
class Trial:
    """One run of a sweep: its parameter values and seed."""

    index: int
    params: dict
    seed: int

    def name(self, sweep: Sweep) -> str:
        """The run name: sweep name, trial index and seed (stable across re-runs)."""
        return f"{sweep.name}-{self.index:03d}-seed{self.seed}"

    def overrides(self) -> list[str]:
        """The trial's ``key=value`` arguments, as ``wandb agent`` would pass them, and its seed."""
        return [*(override(k, v) for k, v in self.params.items()), f"seed={self.seed}"]


def _sample(p: Parameter, rng: np.random.Generator) -> Any:
    if p.values is not None:
        return p.values[int(rng.integers(len(p.values)))]
    lo, hi = p.bounds
    if p.distribution == "uniform":
        return float(rng.uniform(lo, hi))
    if p.distribution == "int_uniform":
        return int(rng.integers(lo, hi + 1))
    if p.distribution == "log_uniform_values":
        return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    raise SweepError(
        f"parameters.{p.key}: distribution {p.distribution!r} is not supported by local runs "
        "(uniform, int_uniform, log_uniform_values, values); use wandb agent"
    )


def expand(
    sweep: Sweep, seeds: int = 1, count: int | None = None, where: dict[str, str] | None = None
) -> list[Trial]:
    """The trials of a sweep for a local run, each repeated with seeds 1..``seeds``.

    Grid sweeps give every combination of the parameters' values, in file order. Random
    sweeps (and Bayesian ones, which need W&B's server to choose points) draw ``count`` or
    ``run_cap`` trials from the distributions, reproducibly (seeded by the sweep's name).
    ``where`` (grid sweeps: swept key -> value as ``key=value`` writes it) keeps only the
    trials with those values; they keep their indices (and so their run names) in the grid.

    Raises:
        SweepError: a grid over a distribution, a random sweep without a trial count, or a
            ``where`` key the grid does not sweep or a value it does not take.
    """
    if seeds < 1:
        raise SweepError(f"seeds must be >= 1, got {seeds}")
    if sweep.method == "grid":
        continuous = [p.key for p in sweep.parameters if p.values is None]
        if continuous:
            raise SweepError(f"{sweep.path}: a grid needs values for {continuous}")
        combos = [
            dict(zip([p.key for p in sweep.parameters], combo, strict=True))
            for combo in itertools.product(*(p.values for p in sweep.parameters))
        ]
        if count is not None:
            combos = combos[:count]
    else:
        n = count or sweep.run_cap
        if not n:
            raise SweepError(f"{sweep.path}: a {sweep.method} sweep needs run_cap or --count")
        rng = np.random.default_rng(zlib.crc32(sweep.name.encode()))
        combos = [{p.key: _sample(p, rng) for p in sweep.parameters} for _ in range(n)]
    keep = _where(sweep, where or {})
    return [
        Trial(i, params, seed)
        for i, params in enumerate(combos)
        if all(str(params[k]) == v for k, v in keep.items())
        for seed in range(1, seeds + 1)
    ]


def _where(sweep: Sweep, where: dict[str, str]) -> dict[str, str]:
    if where and sweep.method != "grid":
        raise SweepError(f"{sweep.path}: --where selects trials of a grid sweep only")
    values = {p.key: [str(v) for v in p.values or ()] for p in sweep.parameters}
    for key, value in where.items():
        if key not in values:
            raise SweepError(
                f"{sweep.path}: --where {key}={value}: {key} is not swept "
                f"(swept: {', '.join(values)}); give it as an override instead"
            )
        if value not in values[key]:
            raise SweepError(
                f"{sweep.path}: --where {key}={value}: the grid's values of {key} are "
                f"{', '.join(values[key])}"
            )
    return where


def parse_where(items: list[str] | None) -> dict[str, str]:
    """``--where key=value`` arguments as a mapping."""
    out = {}
    for item in items or ():
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise SweepError(f"--where expects key=value, got {item!r}")
        out[key] = value
    return out


def with_preset(sweep: Sweep, preset: str | None) -> Sweep:
    """The sweep with its command's ``--preset`` replaced (or added) by ``preset``."""
    if preset is None:
        return sweep
    cmd = list(sweep.command)
    if "--preset" in cmd[:-1]:
        cmd[cmd.index("--preset") + 1] = preset
    else:
        at = cmd.index("train") + 1 if "train" in cmd else len(cmd) - 1
        cmd[at:at] = ["--preset", preset]
    return dataclasses.replace(sweep, command=tuple(cmd))


def preset_of(sweep: Sweep) -> str | None:
    """The ``--preset`` the sweep's command names, if any."""
    cmd = list(sweep.command)
    return cmd[cmd.index("--preset") + 1] if "--preset" in cmd[:-1] else None
