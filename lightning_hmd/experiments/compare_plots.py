"""The pictures of ``lightning-hmd compare``: learning curves per configuration, accuracy
against smoothness, and a metric against each swept parameter.

A protocol's numbers never share a line with another protocol's: with several protocols in
one comparison, every label carries its protocol.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from lightning_hmd.experiments.compare import ConfigRow, RunRecord

ACCURACY, SMOOTHNESS = "val/pa_mpjpe", "val/accel_error"  # the accuracy-against-smoothness plot


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_")


def _tag(label: str, protocol: str, several: bool) -> str:
    return f"{label} [{protocol}]" if several else label


def short_labels(params: Sequence[dict], labels: Sequence[str]) -> tuple[list[str], str]:
    """Labels that name only the parameters whose values differ between the configurations
    (a plot's points and lines), and the settings they all share (for its title). Without
    parameters (runs outside a sweep), the labels as given.

    >>> short_labels([{"a": 1, "b": 2}, {"a": 3, "b": 2}], ["a=1 b=2", "a=3 b=2"])
    (['a=1', 'a=3'], 'b=2')
    """
    keys = list(dict.fromkeys(k for p in params for k in p))
    if not keys or any(not p for p in params):
        return list(labels), ""
    differ = [k for k in keys if len({repr(p.get(k)) for p in params}) > 1]
    shared = " ".join(f"{k}={params[0][k]}" for k in keys if k not in differ)
    if not differ:
        return list(labels), shared
    return [" ".join(f"{k}={p.get(k)}" for k in differ) for p in params], shared


def write_plots(
    runs: Sequence[RunRecord],
    rows: Sequence[ConfigRow],
    trade_off: Sequence[ConfigRow],
    metric: str,
    out: Path,
) -> list[str]:
    """Learning curves of ``metric`` per configuration, accuracy against smoothness (from
    ``trade_off``, the rows summarised over ``ACCURACY`` and ``SMOOTHNESS``), and ``metric``
    against each swept parameter; returns the file names written below ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [_learning_curves(plt, runs, metric, out)]
    names += _accuracy_vs_smoothness(plt, trade_off, out)
    several = len({r.protocol for r in runs}) > 1
    names += [
        _against_parameter(plt, rows, metric, key, several, out)
        for key in sorted({k for r in rows for k in r.params})
    ]
    plt.close("all")
    return names


def _learning_curves(plt, runs: Sequence[RunRecord], metric: str, out: Path) -> str:  # noqa: ANN001
    """``metric`` against batches, the mean over the seeds of each configuration and
    protocol (at the batches every seed logged)."""
    several = len({r.protocol for r in runs}) > 1
    fig, ax = plt.subplots(figsize=(7, 4))
    groups: dict[tuple[str, str], list[RunRecord]] = defaultdict(list)
    for r in runs:
        groups[(r.config_label, r.protocol)].append(r)
    for (label, protocol), rs in groups.items():
        curves = [dict(r.curves.get(metric, [])) for r in rs]
        steps = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
        if steps:
            ax.plot(
                steps,
                [np.mean([c[s] for c in curves]) for s in steps],
                marker="o",
                label=_tag(label, protocol, several),
            )
    ax.set(title=f"{metric} (mean over seeds)", xlabel="batch", ylabel=metric)
    if ax.lines:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "learning_curves.png", dpi=100)
    return "learning_curves.png"


def _against_parameter(
    plt,  # noqa: ANN001
    rows: Sequence[ConfigRow],
    metric: str,
    key: str,
    several: bool,
    out: Path,
) -> str:
    """``metric`` (mean ± std over seeds) against the swept parameter ``key``, one line per
    protocol; a parameter that is not a number is drawn at evenly spaced ticks."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for protocol in sorted({r.protocol for r in rows}):
        pts = [
            (r.params[key], r.mean[metric], r.std[metric])
            for r in rows
            if key in r.params and r.protocol == protocol
        ]
        labels = [str(v) for v, _, _ in pts]
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v, _, _ in pts)
        x = [v for v, _, _ in pts] if numeric else list(range(len(pts)))
        order = np.argsort(x)
        ax.errorbar(
            np.asarray(x)[order],
            [pts[i][1] for i in order],
            [pts[i][2] for i in order],
            marker="o",
            capsize=4,
            label=protocol,
        )
        if not numeric:
            ax.set_xticks(x, labels)
    ax.set(title=f"{metric} against {key}", xlabel=key, ylabel=metric)
    if several:
        ax.legend(fontsize=7)
    fig.tight_layout()
    name = f"{_slug(metric)}_vs_{_slug(key)}.png"
    fig.savefig(out / name, dpi=100)
    return name


def _accuracy_vs_smoothness(plt, rows: Sequence[ConfigRow], out: Path) -> list[str]:  # noqa: ANN001
    """PA-MPJPE against acceleration error, one point (mean ± std over seeds) per
    configuration and protocol: the trade-off a temporal model makes (a model can be
    smooth by being wrong, and accurate by jittering)."""
    rows = [r for r in rows if not (math.isnan(r.mean[SMOOTHNESS]) or math.isnan(r.mean[ACCURACY]))]
    if not rows:
        return []
    several = len({r.protocol for r in rows}) > 1
    names, shared = short_labels([r.params for r in rows], [r.label for r in rows])
    label_of = {id(r): n for r, n in zip(rows, names, strict=True)}
    fig, ax = plt.subplots(figsize=(7, 5))
    for protocol in sorted({r.protocol for r in rows}):
        part = [r for r in rows if r.protocol == protocol]
        ax.errorbar(
            [r.mean[SMOOTHNESS] for r in part],
            [r.mean[ACCURACY] for r in part],
            xerr=[r.std[SMOOTHNESS] for r in part],
            yerr=[r.std[ACCURACY] for r in part],
            fmt="o",
            capsize=4,
            label=f"protocol {protocol}",
        )
        for r in part:
            ax.annotate(
                _tag(label_of[id(r)], protocol, several),
                (r.mean[SMOOTHNESS], r.mean[ACCURACY]),
                fontsize=7,
                xytext=(4, 4),
                textcoords="offset points",
            )
    ax.set(
        title="accuracy against smoothness (mean ± std over seeds)"
        + (f"\n{shared}" if shared else ""),
        xlabel=f"{SMOOTHNESS} (mm/frame², lower is smoother)",
        ylabel=f"{ACCURACY} (mm, lower is more accurate)",
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "accuracy_vs_smoothness.png", dpi=100)
    return ["accuracy_vs_smoothness.png"]
