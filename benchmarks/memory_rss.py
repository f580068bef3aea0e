"""Memory over a training run: is the footprint flat after warm-up?

Runs the project's own training entry point (``lightning_hmd.train.fit.train``: the run's
Trainer, callbacks, CSV logger and checkpoints) in the paper recipe in phi mode (B = 8, T = 20,
2048-D float16 features, 3 temporal blocks, Δt heads, the hallucinator, the pose
discriminator) on CPU, over feature shards written to a temporary directory (150-frame clips
as the converters write them, ``reader_throughput.write_set``) with the real loader workers
(``data.num_workers``, started anew each epoch). A callback samples, every ``--every``
batches, the memory of the training process plus all its children (the loader workers) with
psutil: the sum of PSS (proportional set size: a page shared by k processes counts 1/k in
each, so the copy-on-write pages the forked workers share with the trainer are counted once),
and the trainer's own RSS beside it::

    .venv/bin/python benchmarks/memory_rss.py                     # ~90 s: 40 batches
    nice -n 19 .venv/bin/python benchmarks/memory_rss.py --batches 1000 --every 5
    .venv/bin/python benchmarks/memory_rss.py --quick             # tiny widths, a few batches

Reported: the memory at the end of warm-up (the first 10 % of the batches), the peak, and
the least-squares slope of the samples after warm-up in MB per 100 batches, of the PSS sum
and of the trainer's RSS alone (the process that lives through the run; the workers are new
every epoch). The footprint is flat when neither grows by 1 MB per 100 batches or more (at
HMMR's 560,000 batches a steady 1 MB per 100 batches would add 5.6 GB); a falling slope is
not growth (the memory of a run is bounded below by its live tensors), and is reported as
measured. The curve is written as a CSV and, with matplotlib, a PNG
(``--out``). ``--summarise LOG`` reads the samples back from a run's printed output.

Warm-up must reach past the first epoch's end (here 60 batches: 64 clips of 150 frames,
T = 20, B = 8): the workers of the first epoch are forked before the first step, those of
every later epoch from a trainer that holds gradients and Adam state; the trainer then
rewrites those pages, and the workers keep the old copies (copy-on-write), a one-time step
of about the trainer's heap.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import platform
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl
import psutil
import torch
from figures import figure  # benchmarks/figures.py
from reader_throughput import write_set  # benchmarks/reader_throughput.py

from lightning_hmd.body.synth import write_synthetic_model
from lightning_hmd.config import load_config
from lightning_hmd.train.fit import train

MB = 1e6
FLAT_MB_PER_100 = 1.0


@dataclass(frozen=True)
class Sample:
    """Memory after batch ``batch`` (1-based), ``seconds`` into the run, in MB."""

    batch: int
    seconds: float
    pss_mb: float  # trainer + loader workers, PSS summed
    trainer_rss_mb: float
    workers: int


def process_tree_memory(root: psutil.Process) -> tuple[float, float, int]:
    """(PSS of ``root`` and all its descendants summed, RSS of ``root``, descendants), MB.

    A child that exits while it is read (a loader worker at an epoch's end) is left out.
    """
    pss = root.memory_full_info().pss
    children = root.children(recursive=True)
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            pss += child.memory_full_info().pss
    return pss / MB, root.memory_info().rss / MB, len(children)


class MemorySampler(pl.Callback):
    """Samples :func:`process_tree_memory` after every ``every``-th batch."""

    def __init__(self, every: int):
        self.every = every
        self.samples: list[Sample] = []
        self._proc = psutil.Process(os.getpid())
        self._start = time.perf_counter()
        self._batches = 0

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self._batches += 1
        if self._batches % self.every == 0:
            pss, rss, workers = process_tree_memory(self._proc)
            seconds = time.perf_counter() - self._start
            self.samples.append(Sample(self._batches, seconds, pss, rss, workers))
            print(f"batch {self._batches} at {seconds:.0f} s: {pss:.1f} MB PSS, "
                  f"{rss:.1f} MB trainer RSS, {workers} workers", flush=True)  # fmt: skip


def slope_per_100(batches: list[float], values: list[float]) -> float:
    """Least-squares slope of ``values`` against ``batches``, in value units per 100 batches.

    >>> slope_per_100([0, 1, 2, 3], [100, 101, 102, 103])
    100.0
    """
    n = len(batches)
    if n < 2:
        raise ValueError("a slope needs at least two samples")
    mx, my = sum(batches) / n, sum(values) / n
    sxx = sum((x - mx) ** 2 for x in batches)
    sxy = sum((x - mx) * (y - my) for x, y in zip(batches, values, strict=True))
    return 100.0 * sxy / sxx


def warmup_batches(total: int) -> int:
    """Batches counted as warm-up: the first 10 % of the run, at least 1."""
    return max(1, total // 10)


@dataclass(frozen=True)
class Summary:
    warm_mb: float  # the last sample at or before the end of warm-up
    peak_mb: float
    slope_mb_per_100: float  # over the samples after warm-up
    after: int  # samples after warm-up
    trainer_slope_mb_per_100: float = 0.0  # the trainer's RSS alone, after warm-up


def summarise(samples: list[Sample], warmup: int) -> Summary:
    before = [s for s in samples if s.batch <= warmup] or samples[:1]
    after = [s for s in samples if s.batch > warmup]
    batches = [s.batch for s in after]
    slope = slope_per_100(batches, [s.pss_mb for s in after])
    trainer = slope_per_100(batches, [s.trainer_rss_mb for s in after])
    return Summary(before[-1].pss_mb, max(s.pss_mb for s in samples), slope, len(after), trainer)


def grows(slope_mb_per_100: float) -> bool:
    """Whether a slope is growth the goal refuses (1 MB per 100 batches or more).

    >>> grows(0.99), grows(1.0), grows(-15.0)
    (False, True, False)
    """
    return slope_mb_per_100 >= FLAT_MB_PER_100


def write_curve(samples: list[Sample], out: Path, warmup: int, title: str) -> list[Path]:
    """``out`` with suffix .csv, and ``out`` as a PNG when matplotlib is installed."""
    out.parent.mkdir(parents=True, exist_ok=True)
    written = [out.with_suffix(".csv")]
    with written[0].open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["batch", "seconds", "pss_mb", "trainer_rss_mb", "workers"])
        for s in samples:
            w.writerow([s.batch, f"{s.seconds:.1f}", f"{s.pss_mb:.1f}",
                        f"{s.trainer_rss_mb:.1f}", s.workers])  # fmt: skip
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return written
    fig, ax = plt.subplots(figsize=(6.4, 3.2), dpi=80)
    ax.plot([s.batch for s in samples], [s.pss_mb for s in samples], lw=1, label="PSS, all")
    ax.plot([s.batch for s in samples], [s.trainer_rss_mb for s in samples], lw=1,
            label="RSS, trainer")  # fmt: skip
    ax.axvline(warmup, color="grey", ls=":", lw=1, label="end of warm-up")
    ax.set_xlabel("batch")
    ax.set_ylabel("MB")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"))
    plt.close(fig)
    return [*written, out.with_suffix(".png")]


def run_config(root: Path, ns: argparse.Namespace) -> object:
    """The run's config: ``ns.preset`` in phi mode over the shards under ``root``."""
    return load_config(
        ns.preset,
        overrides=[
            "model.init_checkpoint=none",
            f"body.model_dir={root / 'body'}",
            "data.inputs=features",
            "model.feat_dim=2048",
            f"data.train_sets=[{root / 'shards' / 'train'}]",
            "data.train_weights=[1.0]",
            "data.train_groups=[]",
            "data.val_sets=[]",
            "data.test_sets=[]",
            f"data.mocap_sets=[{root / 'shards' / 'mocap'}]",
            f"data.num_workers={ns.workers}",
            "trainer.accelerator=cpu",
            f"trainer.max_batches={ns.batches}",
            "trainer.val_every_batches=0",
            "trainer.ckpt_every_batches=0",
            "trainer.image_every_batches=0",
            "trainer.progress_bar=false",
            "logger.kind=csv",
            f"run.root={root / 'runs'}",
            "run.name=memory",
            *ns.overrides,
        ],
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", type=int, default=40)
    p.add_argument("--every", type=int, default=2, help="sample after every N-th batch")
    p.add_argument("--workers", type=int, default=2, help="loader workers")
    p.add_argument("--clips", type=int, default=64, help="150-frame feature clips")
    p.add_argument("--preset", default="paper")
    p.add_argument("--quick", action="store_true", help="tiny preset, 8 batches (tests)")
    p.add_argument(
        "--out", type=Path, default=None, help="write the curve here (.png, and .csv beside it)"
    )
    p.add_argument(
        "--summarise",
        type=Path,
        default=None,
        metavar="LOG",
        help="summarise the samples a run printed to LOG instead of running",
    )
    p.add_argument("overrides", nargs="*", metavar="key=value")
    ns = p.parse_args()
    if ns.quick:
        ns.preset, ns.batches, ns.every, ns.clips = "tiny", 8, 1, 4
    samples = read_log(ns.summarise) if ns.summarise else measure(ns)
    d = load_config(ns.preset, overrides=["model.init_checkpoint=none", *ns.overrides]).data
    done = samples[-1].batch if samples else 0
    warmup = warmup_batches(ns.batches)
    if sum(x.batch > warmup for x in samples) < 2:
        raise SystemExit(f"fewer than 2 samples after warm-up (batch {warmup}): run longer")
    s = summarise(samples, warmup)
    title = f"{ns.preset} phi B={d.batch_size} T={d.seq_len}, CPU, {ns.workers} workers"
    if ns.out is not None:  # recorded results are written only when asked for
        written = write_curve(samples, ns.out, warmup, title)
        print("curve: " + ", ".join(str(w) for w in written))
    what = f"{ns.preset} phi B={d.batch_size} T={d.seq_len}, PSS of trainer + workers"
    figure(f"memory at warm-up end (batch {warmup}; {what})", f"{s.warm_mb:.0f} MB")
    figure(f"peak memory over {done} batches ({what})", f"{s.peak_mb:.0f} MB")
    span = f"batches {warmup + 1}-{done}, {s.after} samples"
    goal = f"slope < +{FLAT_MB_PER_100:.0f} MB per 100 batches: no growth after warm-up"
    for name, slope in (
        (what, s.slope_mb_per_100),
        (f"{ns.preset} phi, the trainer's RSS alone", s.trainer_slope_mb_per_100),
    ):
        figure(
            f"memory slope after warm-up ({span}, {name})",
            f"{slope:+.2f} MB per 100 batches",
            goal,
            not grows(slope),
        )


def measure(ns: argparse.Namespace) -> list[Sample]:
    """Trains ``ns.batches`` batches over temporary shards; the memory samples."""
    cpu = platform.processor() or platform.machine()
    print(
        f"{cpu}, {os.cpu_count()} CPUs; torch {torch.__version__}; preset {ns.preset} phi; "
        f"{ns.batches} batches, {ns.workers} loader workers, sampled every {ns.every}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_synthetic_model(root / "body")
        write_set(root / "shards" / "train", ns.clips, 150, features=True, crop=224)
        sampler = MemorySampler(ns.every)
        os.environ.setdefault("WANDB_MODE", "disabled")
        train(run_config(root, ns), callbacks=[sampler])
    return sampler.samples


LOG_LINE = re.compile(
    r"^batch (\d+) at (\d+) s: ([\d.]+) MB PSS, ([\d.]+) MB trainer RSS, (\d+) workers$"
)


def read_log(path: Path) -> list[Sample]:
    """The samples a run printed (its ``batch N at S s: ...`` lines), e.g. of a run that is
    still going or was stopped."""
    samples = []
    for line in path.read_text().splitlines():
        m = LOG_LINE.match(line.strip())
        if m:
            b, sec, pss, rss, w = m.groups()
            samples.append(Sample(int(b), float(sec), float(pss), float(rss), int(w)))
    return samples


if __name__ == "__main__":
    main()
