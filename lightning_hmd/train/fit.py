"""``lightning-hmd train``: the Trainer, its callbacks and loggers, and resuming a run.

Budgets and cadences come from ``cfg.trainer`` in batches. Lightning's ``global_step``
counts optimiser steps, two per batch here, so ``max_steps = 2 * max_batches``; checkpoints
are written by :class:`BatchCheckpoint` on the module's own batch counter.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import NamedTuple

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import Logger, TensorBoardLogger, WandbLogger
from lightning.pytorch.plugins.environments import SLURMEnvironment
from lightning.pytorch.strategies import DDPStrategy
from omegaconf import DictConfig

from lightning_hmd.checkpoint import CheckpointError, load_checkpoint
from lightning_hmd.config import dotted_keys, init_checkpoint, to_container
from lightning_hmd.evaluation.protocols import get_protocol
from lightning_hmd.models.hmr_init import load_hmr_init
from lightning_hmd.models.summary import parameter_counts, step_flops
from lightning_hmd.train.clock import TrainClock
from lightning_hmd.train.csv_log import RunCSVLogger
from lightning_hmd.train.data import ShardData, check_inputs, check_paths, feature_set_of
from lightning_hmd.train.hparams_record import hparams_of, tensorboard_without_tf, write_hparams
from lightning_hmd.train.module import HMMRModule
from lightning_hmd.train.panels import KeypointPanels
from lightning_hmd.train.requeue import RequeueSignal, requeue_job
from lightning_hmd.train.run_dir import (
    SUMMARY,
    check_resume_config,
    read_sweep_record,
    run_dir,
    run_name,
)
from lightning_hmd.train.run_lock import hold_run
from lightning_hmd.train.skip_monitor import SkipMonitor
from lightning_hmd.train.topology import TopologyReport

OPTIMIZERS_PER_BATCH = 2  # generator + discriminator
LAST = "last.ckpt"


class BatchCheckpoint(Callback):
    """``batchNNNNNNNN.ckpt`` every ``every`` batches and ``last.ckpt``, and both after the
    final batch.

    The final checkpoint is written from the last batch's hook, not at the end of training:
    by then Lightning has closed the epoch, and a run resumed from there (with a larger
    budget) would start a new epoch instead of finishing the interrupted one. Files are
    written under a temporary name and renamed, so a killed job never leaves a half-written
    ``last.ckpt`` to resume from.
    """

    def __init__(
        self, dirpath: Path, every: int, max_batches: int, requeue: RequeueSignal | None = None
    ) -> None:
        self.dirpath, self.every, self.max_batches = Path(dirpath), every, max_batches
        self.requeue = requeue  # SLURM's stop signal (see train/requeue.py)
        self.stopped_for_requeue = False
        self._saved_at = -1

    def _save(self, trainer: pl.Trainer, name: str) -> None:
        tmp = self.dirpath / f".{name}.tmp"
        trainer.save_checkpoint(tmp, weights_only=False)  # rank 0 writes; all ranks wait
        if trainer.is_global_zero:
            os.replace(tmp, self.dirpath / name)

    def _save_both(self, trainer: pl.Trainer, module: HMMRModule) -> None:
        n = int(module.batches_done)
        if n == self._saved_at:
            return
        self._saved_at = n
        self._save(trainer, f"batch{n:08d}.ckpt")
        self._save(trainer, LAST)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        n = int(module.batches_done)
        if n and ((self.every and n % self.every == 0) or n >= self.max_batches):
            self._save_both(trainer, module)
        # every rank takes part in the vote, so all stop after the same batch
        if self.requeue is not None and trainer.strategy.reduce_boolean_decision(
            self.requeue.received, all=False
        ):
            if n != self._saved_at:
                self._saved_at = n
                self._save(trainer, LAST)
            self.stopped_for_requeue = True
            trainer.should_stop = True

    def on_train_end(self, trainer, module) -> None:  # noqa: ANN001
        self._save_both(trainer, module)

    def on_exception(self, trainer, module, exception) -> None:  # noqa: ANN001
        self._save_both(trainer, module)


class EpochSeeder(Callback):
    """Reseed the training streams at every epoch start from the trainer's epoch (restored on
    resume); Lightning calls ``set_epoch`` only on samplers, not on custom iterables."""

    def on_train_epoch_start(self, trainer, module) -> None:  # noqa: ANN001
        loader = getattr(trainer.datamodule, "train_loader", None)
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(trainer.current_epoch)


def _wandb_mode(env: Mapping[str, str]) -> bool:
    """True for offline: W&B runs offline unless an API key is configured (or WANDB_MODE
    says otherwise; WANDB_MODE=disabled turns it off entirely, as wandb itself does)."""
    if env.get("WANDB_MODE"):
        return env["WANDB_MODE"] == "offline"
    netrc = Path.home() / ".netrc"
    has_key = bool(env.get("WANDB_API_KEY")) or (
        netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore")
    )
    return not has_key


def make_logger(
    cfg: DictConfig,
    out: Path,
    name: str,
    env: Mapping[str, str],
    resume_batches: int | None = None,
) -> Logger:
    """The run's logger; ``resume_batches``: the batches of the checkpoint it resumes from
    (the CSV file keeps the rows of those batches, ``train/csv_log.py``)."""
    kind = cfg.logger.kind
    if kind == "csv":
        return RunCSVLogger(out, resume_batches)
    if kind == "tensorboard":
        tensorboard_without_tf()
        return TensorBoardLogger(out, name="", version="")
    return WandbLogger(
        project=cfg.logger.project,
        entity=cfg.logger.entity or None,
        group=cfg.logger.group or None,
        name=name,
        id=name,  # the same id for every rank and requeue: a resumed job continues its run
        save_dir=str(out),
        offline=_wandb_mode(env),
        resume="allow",
    )


def make_trainer(
    cfg: DictConfig,
    out: Path,
    name: str,
    env: Mapping[str, str],
    requeue: RequeueSignal | None = None,
    resume_batches: int | None = None,
    extra_callbacks: Sequence[Callback] = (),
) -> pl.Trainer:
    """The Trainer of a run; ``requeue``: under SLURM, the signal that makes the run
    checkpoint and stop so that it can be requeued (Lightning's own handler is off);
    ``extra_callbacks``: the caller's (a sweep agent's metric reporter), after the run's own;
    ``resume_batches``: the batches of the checkpoint the run resumes from."""
    t = cfg.trainer
    processes = t.devices * t.num_nodes
    strategy: str | DDPStrategy = "auto"
    if processes > 1:
        # Each batch runs two backward passes that each reach only one of the two networks
        # (the generator step runs with the discriminator frozen, the discriminator step on
        # detached fakes; train/module.py), so DDP must look for unused parameters: with
        # Lightning's default find_unused_parameters=False the second backward fails with
        # "Expected to have finished reduction in the prior iteration".
        strategy = DDPStrategy(
            find_unused_parameters=True, timeout=timedelta(seconds=cfg.run.collective_timeout_s)
        )
    val_every = t.val_every_batches if cfg.data.val_sets else 0
    return pl.Trainer(
        default_root_dir=out,
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=strategy,
        precision=t.precision,
        max_steps=OPTIMIZERS_PER_BATCH * t.max_batches,
        max_epochs=-1,
        val_check_interval=val_every or None,
        check_val_every_n_epoch=None,
        limit_val_batches=(t.val_batches or 1.0) if val_every else 0,
        num_sanity_val_steps=0,
        log_every_n_steps=t.log_every_batches,
        enable_progress_bar=t.progress_bar,
        logger=make_logger(cfg, out, name, env, resume_batches),
        plugins=[SLURMEnvironment(auto_requeue=False)] if requeue is not None else None,
        callbacks=[
            BatchCheckpoint(out / "checkpoints", t.ckpt_every_batches, t.max_batches, requeue),
            EpochSeeder(),
            SkipMonitor(cfg.data.max_skip_fraction, t.log_every_batches, t.max_batches),
            KeypointPanels(t.image_every_batches, out / "images"),
            TopologyReport(),
            TrainClock(),
            *extra_callbacks,
        ],
        enable_checkpointing=False,  # BatchCheckpoint writes them, counted in batches
        use_distributed_sampler=False,  # the reader splits shards over ranks itself
    )


def logged_config(config: dict, out: Path, logger: Logger) -> dict:
    """The config as each logger shows it: nested for files (``hparams.yaml``); for W&B in
    dotted keys, the names overrides and sweep parameters use (a ``wandb agent`` run already
    holds its parameters under those names), plus ``sweep.*`` (name, trial, seed and the
    swept keys, from ``sweep.json``) for grouping runs in the dashboard."""
    if not isinstance(logger, WandbLogger):
        return config
    flat = dotted_keys(config)
    sweep = read_sweep_record(out)
    if sweep:
        flat.update(
            {
                "sweep.name": sweep.get("sweep", ""),
                "sweep.trial": sweep.get("trial"),
                "sweep.seed": sweep.get("seed"),
                "sweep.parameters": sorted(sweep.get("params", {})),
            }
        )
    return flat


def train(
    cfg: DictConfig,
    env: Mapping[str, str] | None = None,
    *,
    allow_config_change: bool = False,
    callbacks: Sequence[Callback] = (),
) -> Path:
    """Train (or resume) the run of ``cfg``; returns its directory.

    The run directory is locked for the whole call (``train/run_lock.py``): a second process
    on it is refused, naming the holder. A resumed run must have the config of its
    ``last.ckpt`` apart from ``run_dir.RESUME_SAFE_KEYS``; other changes are refused, listed
    key by key, before anything is written, unless ``allow_config_change``.

    Under SLURM, SIGUSR1 makes the run checkpoint after its current batch, stop and requeue
    its job (``train/requeue.py``); the requeued job resumes from that ``last.ckpt``.
    """
    env = os.environ if env is None else env
    check_paths(cfg)
    check_inputs(cfg)  # before the run directory exists
    config = to_container(cfg)
    out, name = run_dir(config, env), run_name(config, env)
    last = out / "checkpoints" / LAST
    # reads only: a bad last.ckpt or a changed config is refused before anything is written
    resume = _resume_point(cfg, config, last, allow_config_change)
    with hold_run(out, env):
        if resume is None:  # another process may have written last.ckpt before we locked
            resume = _resume_point(cfg, config, last, allow_config_change)
        return _fit(cfg, config, out, name, env, resume, callbacks)


class Resume(NamedTuple):
    """Where a run resumes: the checkpoint, the config changes accepted, its batches."""

    ckpt: str
    changes: list[str]
    batches: int


def _resume_point(
    cfg: DictConfig, config: dict, last: Path, allow_config_change: bool
) -> Resume | None:
    """Where the run resumes (``last.ckpt``), or None for a new run.

    Raises:
        CheckpointError: ``last.ckpt`` is unreadable or holds no config (one line naming it).
        ConfigChangedError: the config differs from the checkpoint's in keys that are not
            safe to change, and ``allow_config_change`` is False.
    """
    if not (cfg.run.resume and last.is_file()):
        return None
    what = "checkpoint to resume from"
    blob = load_checkpoint(last, what=what, mmap=True)  # mapped: cheap
    recorded = (blob.get("hyper_parameters") or {}).get("config")
    if not isinstance(recorded, dict):
        raise CheckpointError(f"{last}: not a lightning_hmd {what} (no hyper_parameters.config)")
    changes = check_resume_config(recorded, config, last, allow_config_change)
    batches = (blob.get("state_dict") or {}).get("batches_done")
    if batches is None:
        raise CheckpointError(f"{last}: not a lightning_hmd {what} (no batches_done)")
    return Resume(str(last), changes, int(batches))


def _fit(
    cfg: DictConfig,
    config: dict,
    out: Path,
    name: str,
    env: Mapping[str, str],
    resume: Resume | None,
    callbacks: Sequence[Callback] = (),
) -> Path:
    """The body of :func:`train`, with the run directory locked."""
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    module = HMMRModule(config)
    requeue = RequeueSignal().install() if SLURMEnvironment.detect() else None
    trainer = make_trainer(cfg, out, name, env, requeue, resume and resume.batches, callbacks)
    ckpt, changes = (resume.ckpt, resume.changes) if resume is not None else (None, [])
    if trainer.is_global_zero:
        print(f"run directory: {out}" + (f" (resuming from {ckpt})" if ckpt else ""))
        if changes:
            print("resuming with a changed config (--allow-config-change): " + "; ".join(changes))
    init = init_checkpoint(cfg)
    if init and ckpt is None:  # a resumed run has its own weights
        keys = load_hmr_init(module.generator, init, cfg.model.init_parts)
        if trainer.is_global_zero:
            print(
                f"initialised {len(keys)} tensors ({', '.join(cfg.model.init_parts)}) from "
                f"{init}"
            )
    trainer.logger.log_hyperparams(logged_config(config, out, trainer.logger))
    try:
        # weights_only pinned: TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 would otherwise unpickle
        # whatever the checkpoint holds
        trainer.fit(module, datamodule=ShardData(cfg), ckpt_path=ckpt, weights_only=True)
        batches = int(module.batches_done)
        if trainer.is_global_zero:
            _record_results(cfg, out, trainer, batches)
    finally:
        if isinstance(trainer.logger, WandbLogger) and trainer.is_global_zero:
            trainer.logger.experiment.finish()  # flush this run now, not at interpreter exit
        if requeue is not None:
            requeue.uninstall()
    saver = next(c for c in trainer.callbacks if isinstance(c, BatchCheckpoint))
    stopped = saver.stopped_for_requeue and batches < cfg.trainer.max_batches
    if stopped and trainer.is_global_zero:
        print(f"stopped after batch {batches} on SLURM's signal; {requeue_job(env)}", flush=True)
    return out


def _record_results(cfg: DictConfig, out: Path, trainer: pl.Trainer, batches: int) -> None:
    """Rank 0, once training ends: ``summary.json``, the HParams row and the W&B summary."""
    protocol = get_protocol(cfg.eval.protocol).describe()
    skipped = next(c for c in trainer.callbacks if isinstance(c, SkipMonitor)).summary()
    model = model_summary(cfg)
    clock = next(c for c in trainer.callbacks if isinstance(c, TrainClock))
    summary = write_summary(
        out,
        trainer,
        batches,
        cfg.trainer.max_batches,
        protocol,
        skipped,
        model=model,
        train_seconds=clock.seconds,
        features=feature_set_of(cfg),
    )
    row = hparams_of(read_sweep_record(out), cfg.seed, protocol["name"])
    write_hparams(out, row, summary["metrics"])
    if isinstance(trainer.logger, WandbLogger):
        trainer.logger.experiment.summary.update(
            {
                **summary["metrics"],
                "batches": batches,
                "finished": summary["finished"],
                "protocol": protocol["name"],
                "protocol_card": protocol["card"],
                "skipped": skipped,
                "train_seconds": summary.get("train_seconds"),
                "features": summary.get("features"),
                "params/total": model["parameters"]["total"],
                "params/temporal_encoder": model["parameters"]["temporal_encoder"],
                "flops_per_batch/generator": model["flops_per_batch"]["generator"],
                "flops_per_batch/temporal_encoder": model["flops_per_batch"]["temporal_encoder"],
            }
        )


def model_summary(cfg: DictConfig) -> dict:
    """The configured model's parameter counts per component and its FLOPs per training batch
    from features (``models/summary.py``: the meta device, instant), for ``summary.json``."""
    d = cfg.data
    return {
        "temporal_kind": str(cfg.model.temporal.kind),
        "discriminator": str(cfg.model.discriminator),
        # a features run builds no image encoder (train/module.py), nor is one counted here
        "parameters": parameter_counts(cfg.model, with_image_encoder=cfg.data.inputs == "images"),
        "flops_per_batch": step_flops(cfg.model, d.batch_size, d.seq_len),
    }


def write_summary(
    out: Path,
    trainer: pl.Trainer,
    batches: int,
    max_batches: int,
    protocol: dict,
    skipped: dict | None = None,
    *,
    model: dict | None = None,
    train_seconds: float | None = None,
    features: str | None = None,
) -> dict:
    """Write ``summary.json`` in the run directory (atomically): batches trained, whether the
    budget was reached, the last logged validation and training metrics, the protocol (name
    and card) the validation metrics were scored under, and the samples skipped as damaged
    by reason (``{"train": {...}, "val": {...}}``, summed over the ranks), the model's
    parameter counts and FLOPs per batch (:func:`model_summary`), the training time in
    wall-clock seconds over all the jobs that trained the run (``train/clock.py``) and the
    encoder id of the feature set it read (``None``: images, or a set without an id)."""
    metrics = {
        k: float(v)
        for k, v in sorted(trainer.callback_metrics.items())
        if k.startswith(("val/", "train/loss/")) and v.numel() == 1
    }
    summary = {
        "batches": batches,
        "finished": batches >= max_batches,
        "protocol": protocol,
        "metrics": metrics,
        "skipped": skipped or {"train": {}, "val": {}},
    }
    if model is not None:
        summary["model"] = model
    if train_seconds is not None:
        summary["train_seconds"] = round(float(train_seconds), 3)
    summary["features"] = features
    tmp = out / (SUMMARY + ".partial")
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    tmp.replace(out / SUMMARY)
    return summary
