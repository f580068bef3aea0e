"""The HMMR LightningModule: generator and discriminator with manual optimisation.

Each training batch runs HMMR's update order (``HMRSequenceTrainer.train``,
``src/trainer_sequence_fc.py``): one generator step on every loss term
(current frame, Δt heads, hallucinated predictions, adversarial, shape prior and constancy,
hallucinator feature loss), then one discriminator step on the detached fakes against mocap.

Step accounting: with two optimisers Lightning's ``trainer.global_step`` counts optimiser
steps, i.e. two per batch (Lightning-AI/pytorch-lightning#17958). The module keeps its own
batch counter, ``batches_done`` (a buffer, so it is checkpointed and restored on resume);
budgets, checkpoint cadence and logged steps are all expressed in batches.

A batch whose generator loss is not finite (on any rank) is skipped by every rank and
counted; after ``trainer.max_nonfinite`` such batches in a row training stops with a
checkpoint and :class:`NonFiniteLossError`.

Validation scores whole tracks under ``eval.protocol`` with the evaluation's own code
(:func:`lightning_hmd.evaluation.run.score_item`, one track per step); the tracks' scores
of every rank are gathered at the end and summarised once, so ``val/<metric>`` is the number
``lightning-hmd evaluate`` prints for the same checkpoint and sets.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR

from lightning_hmd.body.model_files import load_mean_params
from lightning_hmd.body.smpl import BodyModel, exclude_from_ddp
from lightning_hmd.checkpoint import CheckpointError, load_checkpoint
from lightning_hmd.config import adversarial
from lightning_hmd.data.batch import ClipBatch
from lightning_hmd.data.whole_tracks import TrackItem
from lightning_hmd.errors import ConfigError, RunError
from lightning_hmd.evaluation.protocols import get_protocol
from lightning_hmd.evaluation.run import gather_scores, padding_feature, score_item
from lightning_hmd.evaluation.scorer import Summary, TrackScore, summarise
from lightning_hmd.losses import DISC, weighted_sum
from lightning_hmd.models.build import build_discriminator, build_generator
from lightning_hmd.objective import discriminator_terms, generator_terms
from lightning_hmd.structures import GeneratorOutput, SequenceBatch
from lightning_hmd.train.grad_sync import backward_one_network, define_gradients
from lightning_hmd.train.schedule import LRFactor


def load_weights(module: HMMRModule, ckpt: str | Path) -> None:
    """Load a checkpoint's weights (``weights_only=True``): exactly the module's state dict,
    which holds no body-model tensor (they are non-persistent buffers, read from the model
    directory).

    Raises:
        ValueError: the checkpoint is not one of this model (names the missing/extra keys).
    """
    state = load_checkpoint(ckpt).get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(f"{ckpt}: not a lightning_hmd checkpoint (no state_dict)")
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches raise even when strict=False
        detail = str(err).splitlines()[1].strip() if "\n" in str(err) else str(err)
        raise CheckpointError(
            f"{ckpt}: does not match the configured model ({detail}; is the config the "
            "checkpoint's?)"
        ) from None
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"{ckpt}: does not match the configured model: missing {result.missing_keys[:5]}, "
            f"unexpected {result.unexpected_keys[:5]} (is the config the checkpoint's?)"
        )


@contextmanager
def frozen(net: nn.Module) -> Iterator[None]:
    """``net``'s parameters do not require gradients inside the block (restored after)."""
    flags = [p.requires_grad for p in net.parameters()]
    net.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(net.parameters(), flags, strict=True):
            p.requires_grad_(flag)


class NonFiniteLossError(RunError):
    """Too many non-finite losses in a row."""


def log_name(term: str) -> str:
    """Logger key of a loss term: ``train/disc/<term>`` for the discriminator, else
    ``train/loss/<term>``."""
    head, _, rest = term.partition("/")
    if head == DISC:
        return f"train/disc/{rest}"
    return f"train/loss/{term}"


class HMMRModule(pl.LightningModule):
    """Generator and discriminator of HMMR, trained with manual optimisation.

    Args:
        config: the resolved configuration as plain containers (``config.to_container``);
            stored as the checkpoint's hyper-parameters so checkpoints load with
            ``torch.load(weights_only=True)``. The body model is read from
            ``config["body"]["model_dir"]`` and is never stored in checkpoints.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.save_hyperparameters({"config": config})
        cfg: DictConfig = OmegaConf.create(config)
        self.cfg = cfg
        mean_pose, mean_shape = load_mean_params(cfg.body.model_dir)
        self.generator = build_generator(
            cfg.model,
            torch.as_tensor(mean_pose, dtype=torch.float32).view(-1, 3),
            torch.as_tensor(mean_shape, dtype=torch.float32),
            with_image_encoder=cfg.data.inputs == "images",
        )
        self.discriminator = build_discriminator(cfg.model)
        self.adversarial = adversarial(cfg)  # loss.weights.adv > 0: see training_step
        self.body = BodyModel.from_dir(cfg.body.model_dir, cfg.body.gender)
        self.body.requires_grad_(False)
        # The body model is fixed and identical on every rank: keep it out of DDP's broadcasts.
        exclude_from_ddp(self)
        self.register_buffer("batches_done", torch.zeros((), dtype=torch.long))
        self.register_buffer("nonfinite_total", torch.zeros((), dtype=torch.long))
        self.nonfinite_in_row = 0
        self.protocol = get_protocol(cfg.eval.protocol)
        self._val_scores: list[TrackScore] = []
        self._val_blank: Tensor | None = None
        self.val_summary: Summary | None = None  # the last validation's numbers

    # -- forward / optimisers -------------------------------------------------------------

    def forward(self, clips: SequenceBatch) -> GeneratorOutput:
        return self.generator(images=clips.images, phi=clips.phi)

    def configure_optimizers(self) -> tuple[list, list]:
        """Adam for G and D, each with a per-batch LambdaLR (stepped in ``training_step``, as
        manual optimisation requires; Lightning saves and restores their state).

        ``optim.fused`` selects torch's fused Adam kernel (CPU and CUDA): one pass over each
        parameter's state instead of a chain of elementwise kernels, which on CPU is most of
        the update's time for the generator's ~100M parameters; same update to float
        rounding. Lightning has moved the module to its device before this is called."""
        o = self.cfg.optim
        gen_params = [p for p in self.generator.parameters() if p.requires_grad]
        fused = o.fused or None  # None: torch's default (foreach)
        g_opt = torch.optim.Adam(
            gen_params, o.gen_lr, tuple(o.betas), o.eps, weight_decay=o.weight_decay, fused=fused
        )
        d_opt = torch.optim.Adam(
            self.discriminator.parameters(),
            o.disc_lr,
            tuple(o.betas),
            o.eps,
            weight_decay=o.weight_decay,
            fused=fused,
        )
        factor = LRFactor(
            o.schedule,
            self.cfg.trainer.max_batches,
            o.warmup_batches,
            o.min_lr_factor,
            o.step_every_batches,
            o.lr_gamma,
        )
        schedulers = [LambdaLR(opt, factor) for opt in (g_opt, d_opt)]
        return [g_opt, d_opt], schedulers

    # -- training -------------------------------------------------------------------------

    def _all_finite(self, loss: Tensor) -> bool:
        """True when the loss is finite on every rank (all ranks must skip together, or the
        others would wait forever in the gradient all-reduce)."""
        bad = (~torch.isfinite(loss.detach())).float()
        if self.trainer.world_size > 1:
            bad = self.trainer.strategy.reduce(bad, reduce_op="max")
        return not bool(bad)

    def training_step(self, batch: ClipBatch, batch_idx: int) -> Tensor | None:
        clips, mocap = batch.clips, batch.mocap
        # without the adversarial prior (loss.weights.adv = 0) the discriminator is neither
        # run nor trained: its term would be weighted by zero, and its step would train it
        # for nothing (300 quickstart HMR-stage batches, mocap reading included: 23-25 s
        # with them, 21 s without)
        adv = self.adversarial
        if adv and mocap is None:
            raise ConfigError("training batches need mocap poses: set data.mocap_sets")
        g_opt, d_opt = self.optimizers()
        weights = self.cfg.loss.weights
        size = clips.kp2d.shape[0]
        # Dropout's randomness is a function of (seed, rank, batch) alone: other users of
        # torch's global RNG (every DataLoader iterator draws from it) cannot shift it, so a
        # resumed run continues exactly as the uninterrupted one.
        torch.manual_seed(
            (self.cfg.seed * 1_000_003 + self.global_rank) * 1_000_003 + int(self.batches_done)
        )

        # The generator step scores its fakes with the discriminator, whose parameters are
        # frozen meanwhile: the backward pass then reaches the generator only (no
        # discriminator gradients computed; under DDP its buckets carry zeros, 2 % of the
        # bytes).
        with frozen(self.discriminator):
            out = self(clips)
            g_terms, fakes = generator_terms(
                out, clips, self.body, self.discriminator if adv else None
            )
            g_loss = weighted_sum(g_terms, weights)
            if not self._all_finite(g_loss):
                return self._skip_nonfinite(size)
            self.nonfinite_in_row = 0
            g_opt.zero_grad(set_to_none=True)
            define_gradients(self.trainer.strategy.model, self.discriminator)
            self.manual_backward(g_loss)
        if self.cfg.optim.grad_clip > 0:
            self.clip_gradients(
                g_opt, gradient_clip_val=self.cfg.optim.grad_clip, gradient_clip_algorithm="norm"
            )
        g_opt.step()

        # the discriminator step sees the fakes detached: it reaches the discriminator only,
        # and under DDP only the discriminator's gradients are all-reduced (train/grad_sync.py)
        d_terms: dict[str, Tensor] = {}
        d_opt.zero_grad(set_to_none=True)
        if adv:
            d_terms = discriminator_terms(self.discriminator, fakes, mocap)
            d_loss = weighted_sum(d_terms, weights)
            backward_one_network(self.trainer.strategy.model, self.manual_backward, d_loss,
                                 self.discriminator)  # fmt: skip
        # without the prior the step finds no gradient and leaves the discriminator as it is
        # (Adam skips parameters whose gradient is None), but it is still taken: Lightning
        # counts optimiser steps, and budgets, cadences and resuming count on two a batch
        d_opt.step()
        rates = [g_opt.param_groups[0]["lr"], d_opt.param_groups[0]["lr"]]  # this batch's
        for scheduler in self.lr_schedulers():
            scheduler.step()

        self.batches_done += 1
        if self._loggers_write_this_batch():
            values = {log_name(k): v.detach() for k, v in {**g_terms, **d_terms}.items()}
            values["train/loss/total"] = g_loss.detach()
            if d_terms:
                values["train/disc/total"] = d_loss.detach()
            values["train/batches"] = self.batches_done.float()
            values["train/nonfinite"] = self.nonfinite_total.float()
            values["train/lr/gen"] = torch.tensor(rates[0])
            values["train/lr/disc"] = torch.tensor(rates[1])
            self.log_dict(values, batch_size=size)
        self.log("loss", g_loss.detach(), prog_bar=True, logger=False, batch_size=size)
        return g_loss.detach()

    def _loggers_write_this_batch(self) -> bool:
        """Whether this batch's terms reach a logger: every batch without loggers (callbacks
        read them), else only the batches Lightning writes (every
        ``trainer.log_every_batches``): the values of the other batches went nowhere, and
        each ``self.log`` call walks the value and the result collection (under cProfile,
        3 s of 45 s over 300 quickstart HMR-stage batches with 20 values a batch)."""
        trainer = self._trainer
        if trainer is None or not trainer.loggers or trainer.fast_dev_run:
            return True
        # Lightning's own test for "write now" (logger_connector.should_update_logs), so
        # that the batches logged are exactly the ones it writes; a Lightning without it:
        # every batch, as before
        connector = getattr(trainer, "_logger_connector", None)
        return bool(getattr(connector, "should_update_logs", True))

    def _skip_nonfinite(self, size: int) -> None:
        self.nonfinite_total += 1
        self.nonfinite_in_row += 1
        self.log("train/nonfinite", self.nonfinite_total.float(), batch_size=size)
        limit = self.cfg.trainer.max_nonfinite
        if self.nonfinite_in_row >= limit:
            self.trainer.should_stop = True
            raise NonFiniteLossError(
                f"{self.nonfinite_in_row} non-finite generator losses in a row (limit "
                f"trainer.max_nonfinite={limit}) after {int(self.batches_done)} batches: "
                "check the data (data check), the learning rates and the loss weights"
            )
        return None

    # -- validation -----------------------------------------------------------------------

    def on_validation_epoch_start(self) -> None:
        self._val_scores = []
        d = self.cfg.data
        self._val_blank = padding_feature(self.generator, self.protocol, d.inputs, d.img_size)

    def validation_step(self, item: TrackItem, batch_idx: int) -> None:
        d = self.cfg.data
        self._val_scores.append(
            score_item(
                self.generator,
                self.body,
                item,
                self.protocol,
                seq_len=d.seq_len,
                img_size=d.img_size,
                blank=self._val_blank,
            )
        )

    def on_validation_epoch_end(self) -> None:
        # Every rank holds every track's score after the gather and logs the same numbers;
        # float64 so that the logged value is the one ``evaluate`` writes.
        scores, _ = gather_scores(self._val_scores, {})
        self._val_scores = []
        if not scores:
            return
        self.val_summary = summarise(scores, self.protocol)
        for name, value in self.val_summary.metrics.items():
            if value is not None:
                self.log(f"val/{name}", torch.tensor(value, dtype=torch.float64), sync_dist=False)
