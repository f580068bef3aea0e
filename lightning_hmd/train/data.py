"""Shard loaders for Lightning: built once the trainer knows each process's rank."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
from omegaconf import DictConfig, OmegaConf

from lightning_hmd.config import (
    ConfigError,
    adversarial,
    init_checkpoint,
    train_groups,
    train_weights,
)
from lightning_hmd.config_tree import AugmentConfig
from lightning_hmd.data.features import parse_encoder_id
from lightning_hmd.data.loader import (
    EpochLoader,
    FeatureSetMismatchError,
    build_train_loader,
    choose_feature_set,
    first_samples,
    num_fake_poses,
    num_fake_windows,
    probe_feature_sets,
)
from lightning_hmd.data.manifest import MANIFEST_NAME
from lightning_hmd.data.whole_tracks import build_track_loader
from lightning_hmd.errors import MissingPathError


def check_paths(cfg: DictConfig, *, train: bool = True, val: bool = True) -> None:
    """Fail before any work when a configured shard set or the body model is missing (the
    mocap sets only for a run with the adversarial prior, the only reader of them)."""
    mocap = ["data.mocap_sets"] if adversarial(cfg) else []
    keys = (["data.train_sets", *mocap] if train else []) + (["data.val_sets"] if val else [])
    for key in keys:
        for path in OmegaConf.select(cfg, key):
            p = Path(path)
            if not p.is_dir() or not (
                (p / MANIFEST_NAME).is_file() or any(p.glob(f"*/{MANIFEST_NAME}"))
            ):
                raise MissingPathError(
                    f"{key}: {p} is not a shard set (no {MANIFEST_NAME}); make it with "
                    "`lightning-hmd data synth` or `lightning-hmd data convert`"
                )
    if not Path(cfg.body.model_dir).is_dir():
        raise MissingPathError(
            f"body.model_dir: {cfg.body.model_dir} not found; write the synthetic model with "
            "`lightning-hmd body synth --out DIR` or convert SMPL with `lightning-hmd body convert`"
        )
    init = init_checkpoint(cfg)
    if train and init and not Path(init).is_file():
        raise MissingPathError(f"model.init_checkpoint: {init} not found (an HMR init file)")


def _keyed_sets(cfg: DictConfig, train: bool, val: bool) -> list[tuple[str, str]]:
    d = cfg.data
    return ([("data.train_sets", s) for s in d.train_sets] if train else []) + (
        [("data.val_sets", s) for s in d.val_sets] if val else []
    )


def check_inputs(cfg: DictConfig, *, train: bool = True, val: bool = True) -> None:
    """Fail before any work when a set cannot feed ``data.inputs`` (features without phi,
    images without JPEG crops) or holds no readable sample; reads each set's first sample.
    With features, every set must hold the feature set the run reads, made by the config's
    encoder (:func:`check_feature_set`)."""
    d = cfg.data
    keyed = _keyed_sets(cfg, train, val)
    if not keyed:
        return
    firsts = first_samples([s for _, s in keyed])
    member = {
        "features": ("phi", "run `lightning-hmd data features` on it"),
        "images": ("jpeg", "convert it with its JPEG crops"),
    }[d.inputs]
    for key, path in keyed:
        sample = firsts[str(path)]
        if sample is None:
            raise MissingPathError(
                f"{key}: {path} holds no readable sample (`lightning-hmd "
                "data check` names the problems)"
            )
        if getattr(sample, member[0]) is None:
            raise ConfigError(
                f"data.inputs={d.inputs} but {key} {path} holds no "
                f"{'features (phi)' if d.inputs == 'features' else 'JPEG crops'}: "
                f"{member[1]}, or set data.inputs to what the set holds"
            )
    if d.inputs == "features":
        check_feature_set(cfg, train=train, val=val)


def check_feature_set(cfg: DictConfig, *, train: bool = True, val: bool = True) -> str:
    """The feature set a features run reads (its encoder id), checked against its sets and
    its config before any work; the manifests' ``feature_sets`` where recorded, else each
    set's first sample, tell which sets a set holds.

    Every set must hold ``data.features`` (with "": hold one set, the same for all), and the
    id must be one of ``model.encoder`` at ``model.feat_dim`` (ids of the form
    ``<name>-d<dim>-<weights>``; an id of another form is not checked against them).

    Raises:
        FeatureSetMismatchError (a ConfigError): naming the key, the set and the ids it holds.
    """
    keyed = _keyed_sets(cfg, train, val)
    held = probe_feature_sets([s for _, s in keyed])
    chosen = choose_feature_set({f"{k} {s}": held[str(s)] for k, s in keyed}, cfg.data.features)
    parsed = parse_encoder_id(chosen) if chosen else None
    if parsed is None:
        return chosen
    name, dim = parsed
    m = cfg.model
    how = f"data.features={chosen}" if cfg.data.features else 'the one set held, data.features=""'
    for key, want, got in (("model.encoder", m.encoder, name), ("model.feat_dim", m.feat_dim, dim)):
        if want != got:
            listing = "; ".join(f"{k} {s}: {', '.join(held[str(s)])}" for k, s in keyed)
            raise FeatureSetMismatchError(
                f"{key}={want} but the run reads the feature set {chosen} ({how}), made by "
                f"{name} at D={dim}: set {key}={got}, or name a set of {key}={want} in "
                f"data.features (the sets hold {listing})"
            )
    return chosen


def feature_set_of(cfg: DictConfig) -> str | None:
    """The encoder id of the feature set a run reads (for its summary), checked as
    :func:`check_feature_set` checks it; None for a run on images or without sets."""
    if cfg.data.inputs != "features" or not _keyed_sets(cfg, True, True):
        return None
    return check_feature_set(cfg) or None


def mocap_count(cfg: DictConfig) -> int:
    """Real samples per batch for the discriminator: as many poses as it judges fakes with
    the per-frame discriminator, as many windows (of ``data.seq_len`` poses) with the
    motion discriminator."""
    d, m = cfg.data, cfg.model
    if m.discriminator == "motion":
        return num_fake_windows(d.batch_size, len(m.delta_t), m.hallucinator)
    return num_fake_poses(d.batch_size, d.seq_len, len(m.delta_t), m.hallucinator)


class ShardData(pl.LightningDataModule):
    """Training and validation loaders from ``cfg.data``, split over the trainer's ranks."""

    def __init__(self, cfg: DictConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.train_loader: EpochLoader | None = None

    def _rank(self) -> tuple[int, int]:
        return self.trainer.global_rank, self.trainer.world_size

    def train_dataloader(self) -> EpochLoader:
        d, m = self.cfg.data, self.cfg.model
        rank, world = self._rank()
        self.train_loader = build_train_loader(
            list(d.train_sets),
            train_weights(d),
            list(d.mocap_sets) if adversarial(self.cfg) else [],
            groups=train_groups(d),
            batch_size=d.batch_size,
            seq_len=d.seq_len,
            num_workers=d.num_workers,
            rank=rank,
            world_size=world,
            seed=self.cfg.seed,
            inputs=d.inputs,
            img_size=d.img_size,
            augment=AugmentConfig(**OmegaConf.to_container(d.augment)),
            num_fake_poses=mocap_count(self.cfg),
            mocap_window=d.seq_len if m.discriminator == "motion" else 0,
            batches_per_epoch=d.train_batches_per_epoch,
            features=d.features,
        )
        return self.train_loader

    def val_dataloader(self) -> EpochLoader | list:
        """Whole validation tracks, one per step, split over the ranks at track boundaries:
        the tracks ``lightning-hmd evaluate`` scores on the same sets."""
        d = self.cfg.data
        if not d.val_sets:
            return []
        rank, world = self._rank()
        return build_track_loader(
            list(d.val_sets),
            rank=rank,
            world_size=world,
            num_workers=d.num_workers,
            inputs=d.inputs,
            img_size=d.img_size,
            features=d.features,
        )
