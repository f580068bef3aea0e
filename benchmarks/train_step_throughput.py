"""Training throughput: batches/s of the generator + discriminator step, per precision.

Runs Lightning's ``Trainer.fit`` on the configured data for ``--batches`` batches after
``--warmup`` untimed ones, once per ``--precision``, and prints batches/s, frames/s, the
first batch's generator loss (same seed and data for every precision, so the losses can be
compared) and the peak GPU memory. Example (the paper-size model on a GPU, end to end on
images with the ResNet-50 encoder learnt)::

    python benchmarks/train_step_throughput.py --preset paper --data DIR \\
        --precision 32-true,bf16-mixed data.inputs=images model.freeze_encoder=false

``DIR`` is a folder written by ``lightning-hmd data synth`` (train/ val/ test/ mocap/
body_model/). Without ``--data`` a small synthetic set is rendered into a temporary folder
(needs OSMesa or EGL).
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import lightning.pytorch as pl
import torch
from figures import figure  # benchmarks/figures.py

from lightning_hmd.config import load_config, to_container
from lightning_hmd.train.data import ShardData
from lightning_hmd.train.fit import OPTIMIZERS_PER_BATCH
from lightning_hmd.train.module import HMMRModule


class _Clock(pl.Callback):
    """Wall time of the batches after the warm-up, and the first batch's generator loss."""

    def __init__(self, warmup: int):
        self.warmup, self.batches, self.start, self.first_loss = warmup, 0, 0.0, math.nan

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if self.batches == 0:
            self.first_loss = float(trainer.callback_metrics.get("train/loss/total", math.nan))
        self.batches += 1
        if self.batches == self.warmup:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.start = time.perf_counter()

    def elapsed(self) -> float:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return time.perf_counter() - self.start


def _data_overrides(root: Path) -> list[str]:
    return [
        f"body.model_dir={root / 'body_model'}",
        f"data.train_sets=[{root / 'train'}]",
        "data.train_weights=[1.0]",
        "data.train_groups=[]",
        "data.val_sets=[]",
        "data.test_sets=[]",
        f"data.mocap_sets=[{root / 'mocap'}]",
    ]


def run(preset: str, root: Path, precision: str, batches: int, warmup: int, extra: list[str]):
    accelerator = "gpu" if torch.cuda.is_available() else "cpu"
    cfg = load_config(
        preset,
        overrides=[
            "model.init_checkpoint=none",  # random weights: a timing, not a training
            *_data_overrides(root),
            f"trainer.accelerator={accelerator}",
            f"trainer.precision={precision}",
            *extra,
        ],
    )
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    module = HMMRModule(to_container(cfg))
    clock = _Clock(warmup)
    trainer = pl.Trainer(
        accelerator=accelerator,
        devices=1,
        precision=precision,
        max_steps=OPTIMIZERS_PER_BATCH * (warmup + batches),
        max_epochs=-1,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        callbacks=[clock],
    )
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    trainer.fit(module, datamodule=ShardData(cfg))
    seconds = clock.elapsed()
    finite = all(torch.isfinite(p).all() for p in module.parameters())
    frames = cfg.data.batch_size * cfg.data.seq_len
    mem = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else math.nan
    print(
        f"{precision:>10}  {batches / seconds:7.2f} batches/s  {batches * frames / seconds:8.0f} "
        f"frames/s  first loss {clock.first_loss:.4f}  peak GPU memory {mem:.1f} GiB  "
        f"weights finite: {finite}",
        flush=True,
    )
    figure(f"training step, {preset} preset, {precision}, {_device_name()}",
           f"{batches / seconds:.2f} batches/s")  # fmt: skip


def _device_name() -> str:
    return torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="tiny")
    p.add_argument("--data", type=Path, default=None, help="a data synth folder")
    p.add_argument(
        "--precision", default="32-true", help="comma-separated, e.g. 32-true,bf16-mixed"
    )
    p.add_argument("--batches", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("overrides", nargs="*", metavar="key=value")
    ns = p.parse_args()
    print(f"device: {_device_name()}; torch {torch.__version__}; preset {ns.preset} {ns.overrides}")
    with tempfile.TemporaryDirectory() as tmp:
        root = ns.data
        if root is None:
            from lightning_hmd.data.synth.make import make_synthetic_dataset
            from lightning_hmd.data.synth.spec import SynthSpec

            root = Path(tmp) / "data"
            make_synthetic_dataset(root, SynthSpec(clips=8, frames=40), progress=False)
        for precision in ns.precision.split(","):
            run(ns.preset, root, precision, ns.batches, ns.warmup, ns.overrides)


if __name__ == "__main__":
    main()
