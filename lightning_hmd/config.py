"""The one typed configuration tree.

Dataclasses below are the schema; :func:`load_config` turns them into an OmegaConf
structured config and merges presets, YAML files and ``key=value`` overrides on top.
Unknown keys, wrong types and values outside a mode's choices (the enums of
:mod:`lightning_hmd.modes`) fail at load time with an error naming the dotted key.

Defaults are the HMMR paper settings (``--preset paper`` spells them out explicitly).
Dotted keys used by sweeps: ``data.batch_size``, ``data.seq_len``, ``model.temporal.num_blocks``,
``model.ief_iters``, ``model.delta_t``, ``model.hallucinator``, ``model.shape_discriminator``,
``loss.weights.*``, ``optim.gen_lr``, ``optim.disc_lr``, ``seed``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from omegaconf import DictConfig, EnumNode, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lightning_hmd.errors import ConfigError
from lightning_hmd.modes import Inputs, LoggerKind, PoseRepr, Schedule


@dataclass
class AugmentConfig:
    """Online augmentation of training crops (HMMR's ``tube_augmentation`` defaults)."""

    enabled: bool = True
    scale_max: float = 0.3  # per-frame scale 2^U(-scale_max, scale_max)
    trans_max: float = 20.0  # per-frame translation U(-trans_max, trans_max), px of a 224 crop
    flip_prob: float = 0.5  # whole-sequence horizontal flip
    per_frame: bool = True  # independent jitter per frame (HMMR); false: one per sequence
    feature_noise: float = 0.0  # data.inputs=features: std of Gaussian noise added to phi per frame


@dataclass
class DataConfig:
    """Clips fed to the generator and mocap fed to the discriminator.

    Each ``*_sets`` entry is a shard set folder (one holding ``manifest.json``) or a folder
    of such sets. Training draws from ``train_sets`` in the ratios ``train_weights``, one
    weight per group of ``train_groups`` (empty: every set its own group; no weights: equal):
    the sets of one group share the group's windows of each batch in proportion to their
    sizes. HMMR draws half its sequences from Human3.6M and half from one shuffled queue over
    the 2D sets (``train_groups: [0, 1, 1]``, ``train_weights: [0.5, 0.5]``).
    """

    batch_size: int = 8  # B: sequences per batch
    seq_len: int = 20  # T: frames per training sequence
    img_size: int = 224  # crop side in pixels
    num_workers: int = 2
    inputs: Inputs = Inputs.features  # features: precomputed phi; images: JPEG crops
    train_sets: list[str] = field(
        default_factory=lambda: ["data/h36m/train", "data/penn-action/train",
                                 "data/insta-variety/train"]
    )  # fmt: skip
    train_weights: list[float] = field(default_factory=lambda: [0.5, 0.25, 0.25])
    # group index per training set (0..G-1); empty: every set is a group of its own
    train_groups: list[int] = field(default_factory=list)
    val_sets: list[str] = field(default_factory=lambda: ["data/h36m/val", "data/penn-action/val"])
    test_sets: list[str] = field(
        default_factory=lambda: ["data/3dpw/test", "data/h36m/test", "data/penn-action/test"]
    )
    mocap_sets: list[str] = field(
        default_factory=lambda: ["data/mocap_cmu", "data/mocap_h36m", "data/mocap_jointlim"]
    )
    train_batches_per_epoch: int = 0  # 0: every training frame seen about once per epoch
    # a run stops (naming the worst shards) once more than this fraction of the samples its
    # training sets list was found damaged; damaged samples below it are skipped and counted
    max_skip_fraction: float = 0.05
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class TemporalConfig:
    """Temporal encoder f_movie_strip: residual 1D-conv blocks (receptive field 4N+1)."""

    num_blocks: int = 3
    kernel_size: int = 3
    num_groups: int = 32  # GroupNorm groups
    norm_eps: float = 1e-6


@dataclass
class ModelConfig:
    """Generator and discriminator architecture."""

    encoder: str = "resnet50_v2"  # resnet50_v2 (HMR's TF-slim) | torchvision_resnet50 | small_cnn
    feat_dim: int = 2048  # D: phi / Phi channels
    freeze_encoder: bool = True  # HMMR keeps the HMR image encoder fixed
    temporal: TemporalConfig = field(default_factory=TemporalConfig)
    ief_iters: int = 3
    pose_repr: PoseRepr = PoseRepr.axis_angle  # pose in theta: axis_angle (HMMR) | rot6d (6D)
    regressor_hidden: int = 1024
    regressor_dropout: float = 0.5
    delta_t: list[int] = field(default_factory=lambda: [-5, 5])  # empty: no delta heads
    hallucinator: bool = True
    hallucinator_hidden: int = 2048
    shape_discriminator: bool = False
    disc_channels: int = 32  # per-joint 1x1 conv channels of the pose discriminator
    disc_hidden: int = 1024  # full-pose MLP width of the pose discriminator
    shape_disc_hidden: int = 10  # hidden width of HMR's shape discriminator
    # HMMR's use_hmr_ief_init: start from an HMR init file (models.hmr_init, or `import-tf
    # --hmr`); "none" or "": start from scratch. The paper preset leaves it to be given.
    init_checkpoint: str = ""
    init_parts: list[str] = field(default_factory=lambda: ["mean", "f3d"])  # + "encoder"


@dataclass
class BodyConfig:
    """Body model files (see README: ``lightning-hmd body convert`` / ``body synth``)."""

    model_dir: str = "body_model"
    gender: str = "neutral"


@dataclass
class LossWeights:
    """Weights of the unweighted loss terms; applied in one place (losses.weighted_sum)."""

    kp2d: float = 60.0
    joints3d: float = 60.0
    smpl: float = 60.0
    shape_const: float = 1.0
    adv: float = 1.0
    shape_prior: float = 1.0
    hallucinate: float = 1.0
    disc: float = 1.0


@dataclass
class LossConfig:
    weights: LossWeights = field(default_factory=LossWeights)


@dataclass
class OptimConfig:
    """Adam for generator and discriminator (TF defaults as in HMMR)."""

    gen_lr: float = 1e-5
    disc_lr: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 0.0
    grad_clip: float = 0.0  # generator gradient-norm clip; 0 = off
    # Learning-rate schedule of both optimisers, in batches (lightning_hmd.train.schedule):
    schedule: Schedule = Schedule.constant  # constant (HMMR) | cosine | step
    warmup_batches: int = 0  # linear warm-up from 0
    min_lr_factor: float = 0.0  # cosine: final rate / base rate
    step_every_batches: int = 100_000  # step: multiply by lr_gamma every this many batches
    lr_gamma: float = 0.1


@dataclass
class TrainerConfig:
    """Budget and cadence, all counted in batches (one generator and one discriminator step
    each; Lightning's ``global_step`` counts both and so runs at twice this count)."""

    max_batches: int = 560_000  # HMMR's released model: global_step 1,119,816 = 2 per batch
    val_every_batches: int = 5000  # 0: no validation while training
    ckpt_every_batches: int = 5000
    log_every_batches: int = 50
    image_every_batches: int = 5000  # keypoint image panels; 0: none
    accelerator: str = "auto"  # auto | cpu | gpu
    devices: int = 1  # processes per node
    num_nodes: int = 1
    precision: str = "32-true"  # bf16-mixed on GPUs
    max_nonfinite: int = 10  # consecutive non-finite losses before stopping with a checkpoint
    val_batches: int = 0  # validation tracks per validation (one per step); 0: every track
    progress_bar: bool = True  # Lightning's progress bar (off for runs trained side by side)


@dataclass
class LoggerConfig:
    """Experiment logging (W&B goes offline when no API key is configured)."""

    kind: LoggerKind = LoggerKind.wandb  # wandb | csv | tensorboard
    project: str = "lightning_hmd"
    entity: str = ""  # W&B entity; empty: the account's default
    group: str = ""  # W&B group (sweeps set it)


@dataclass
class RunConfig:
    """Where a run writes: ``root/name``; an empty name derives from the config and, under
    SLURM, the job id, so every rank and every requeue of a job agree."""

    root: str = "runs"
    name: str = ""
    resume: bool = True  # continue from ``root/name/checkpoints/last.ckpt`` when it exists


@dataclass
class EvalConfig:
    """How validation and ``lightning-hmd evaluate`` score (``lightning_hmd.evaluation``)."""

    protocol: str = "hmmr"  # hmmr | vibe | tcmr (evaluation/protocols.py)


@dataclass
class Config:
    """Root of the configuration tree."""

    seed: int = 1
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    body: BodyConfig = field(default_factory=BodyConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    run: RunConfig = field(default_factory=RunConfig)


def available_presets() -> list[str]:
    """Names of the presets shipped in ``lightning_hmd/presets``."""
    files = resources.files("lightning_hmd").joinpath("presets").iterdir()
    return sorted(p.name[: -len(".yaml")] for p in files if p.name.endswith(".yaml"))


def _preset_node(name: str) -> DictConfig:
    path = resources.files("lightning_hmd").joinpath("presets", f"{name}.yaml")
    if not path.is_file():
        raise ConfigError(f"unknown preset {name!r}; available: {', '.join(available_presets())}")
    return OmegaConf.create(path.read_text())


def _required_keys(node: DictConfig, prefix: str = "") -> list[str]:
    """Dotted keys a preset leaves to be given (``???``)."""
    keys = []
    for k in node:
        if OmegaConf.is_missing(node, k):
            keys.append(f"{prefix}{k}")
        elif isinstance(node[k], DictConfig):
            keys += _required_keys(node[k], f"{prefix}{k}.")
    return keys


def _merge(base: DictConfig, node: DictConfig | dict, source: str) -> DictConfig:
    try:
        return OmegaConf.merge(base, node)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "?"
        child = getattr(err, "child_node", None)
        if isinstance(child, EnumNode):  # a mode given a value outside its choices
            choices = ", ".join(m.name for m in child.enum_type)  # read by name
            raise ConfigError(
                f"{source}: {key} must be one of {choices}, got {err.value!r}"
            ) from None
        msg = str(err.msg).splitlines()[0]
        raise ConfigError(f"{source}: invalid config key {key!r}: {msg}") from None


def load_config(
    preset: str | None = None,
    files: Sequence[str | Path] = (),
    overrides: Sequence[str] = (),
) -> DictConfig:
    """Build the resolved configuration.

    Order: schema defaults, then the preset, then each YAML file, then ``key=value`` overrides.

    Raises:
        ConfigError: naming the dotted key (unknown key or wrong type) or the file.
    """
    cfg = OmegaConf.structured(Config)
    if preset is not None:
        node = _preset_node(preset)
        cfg = _merge(cfg, node, f"preset {preset!r}")
        for key in _required_keys(node):  # a merge never writes "???": mark them here
            OmegaConf.update(cfg, key, "???", merge=False)
    for f in files:
        path = Path(f)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        cfg = _merge(cfg, OmegaConf.load(path), str(path))
    cfg = _apply_overrides(cfg, overrides)
    validate(cfg)
    return cfg


def _apply_overrides(cfg: DictConfig, overrides: Sequence[str]) -> DictConfig:
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        cfg = _merge(cfg, OmegaConf.from_dotlist([item]), f"override {item!r}")
    return cfg


def config_from_container(container: dict, overrides: Sequence[str] = ()) -> DictConfig:
    """A config stored as plain containers (a checkpoint's hyper-parameters), checked against
    the schema, with ``key=value`` overrides on top.

    Raises:
        ConfigError: naming the dotted key.
    """
    cfg = _merge(OmegaConf.structured(Config), OmegaConf.create(container), "checkpoint config")
    cfg = _apply_overrides(cfg, overrides)
    validate(cfg)
    return cfg


NO_INIT = ("", "none")  # model.init_checkpoint values that mean "start from scratch"
INIT_HELP = (
    "model.init_checkpoint: this preset starts f_3D and the mean parameters from HMR, as "
    "HMMR (use_hmr_ief_init): give an HMR init file, e.g. `lightning-hmd import-tf --hmr "
    "models/hmr_noS5.ckpt-642561 --out hmr.ckpt` then model.init_checkpoint=hmr.ckpt, or "
    "an HMR stage's file (models/hmr_init.py: save_hmr_init); model.init_checkpoint=none "
    "trains them from scratch"
)


def init_checkpoint(cfg: DictConfig) -> str | None:
    """The HMR init file of ``model.init_checkpoint``, or None for "from scratch"."""
    value = cfg.model.init_checkpoint
    return None if value.strip().lower() in NO_INIT else value


def validate(cfg: DictConfig) -> None:
    """Cross-field checks that types alone cannot express."""
    m = cfg.model
    if OmegaConf.is_missing(m, "init_checkpoint"):
        raise ConfigError(INIT_HELP)
    for key in ("data.batch_size", "data.seq_len", "model.ief_iters", "model.feat_dim"):
        if OmegaConf.select(cfg, key) < 1:
            raise ConfigError(f"{key} must be >= 1, got {OmegaConf.select(cfg, key)}")
    if 0 in m.delta_t:
        raise ConfigError("model.delta_t: offset 0 is the current frame; list non-zero offsets")
    if len(set(m.delta_t)) != len(m.delta_t):
        raise ConfigError(f"model.delta_t: duplicate offsets in {list(m.delta_t)}")
    if any(abs(d) >= cfg.data.seq_len for d in m.delta_t):
        raise ConfigError(
            f"model.delta_t: every |offset| must be < data.seq_len={cfg.data.seq_len}, "
            f"got {list(m.delta_t)}"
        )
    if m.feat_dim % m.temporal.num_groups:
        raise ConfigError(
            f"model.temporal.num_groups={m.temporal.num_groups} must divide "
            f"model.feat_dim={m.feat_dim}"
        )
    _validate_data(cfg.data)
    for name, weight in cfg.loss.weights.items():
        if not math.isfinite(weight) or weight < 0:
            raise ConfigError(f"loss.weights.{name} must be a finite number >= 0, got {weight}")
    _validate_trainer(cfg.trainer)
    _validate_optim(cfg.optim)
    if m.temporal.num_blocks < 0:
        raise ConfigError(f"model.temporal.num_blocks must be >= 0, got {m.temporal.num_blocks}")
    from lightning_hmd.evaluation.protocols import PROTOCOLS

    if cfg.eval.protocol not in PROTOCOLS:
        raise ConfigError(
            f"eval.protocol must be one of {', '.join(PROTOCOLS)}, got {cfg.eval.protocol!r}"
        )


def _validate_data(d: DictConfig) -> None:
    groups = list(d.train_groups)
    if groups and len(groups) != len(d.train_sets):
        raise ConfigError(
            f"data.train_groups has {len(groups)} entries but data.train_sets has "
            f"{len(d.train_sets)}; give one group index per set, or none"
        )
    if groups and sorted(set(groups)) != list(range(max(groups) + 1)):
        raise ConfigError(
            f"data.train_groups must number the groups 0, 1, ... without gaps, got {groups}"
        )
    num_groups = max(groups) + 1 if groups else len(d.train_sets)
    if d.train_weights and len(d.train_weights) != num_groups:
        what = "group of data.train_groups" if groups else "set of data.train_sets"
        raise ConfigError(
            f"data.train_weights has {len(d.train_weights)} entries for {num_groups} training "
            f"groups; give one weight per {what}, or none for equal weights"
        )
    if any(w < 0 for w in d.train_weights) or (d.train_weights and sum(d.train_weights) <= 0):
        raise ConfigError(f"data.train_weights must be >= 0 with a positive sum, got "
                          f"{list(d.train_weights)}")  # fmt: skip
    for key in ("num_workers", "train_batches_per_epoch"):
        if d[key] < 0:
            raise ConfigError(f"data.{key} must be >= 0, got {d[key]}")
    if not (math.isfinite(d.max_skip_fraction) and 0.0 <= d.max_skip_fraction <= 1.0):
        raise ConfigError(f"data.max_skip_fraction must be in [0, 1], got {d.max_skip_fraction}")
    a = d.augment
    if a.scale_max < 0 or a.trans_max < 0:
        raise ConfigError(
            f"data.augment.scale_max and trans_max must be >= 0, got {a.scale_max}, {a.trans_max}"
        )
    if not 0.0 <= a.flip_prob <= 1.0:
        raise ConfigError(f"data.augment.flip_prob must be in [0, 1], got {a.flip_prob}")


def _validate_optim(o: DictConfig) -> None:
    for key in ("gen_lr", "disc_lr", "grad_clip", "warmup_batches", "min_lr_factor", "lr_gamma",
                "eps", "weight_decay"):  # fmt: skip
        if not math.isfinite(o[key]) or o[key] < 0:
            raise ConfigError(f"optim.{key} must be a finite number >= 0, got {o[key]}")
    if any(not math.isfinite(b) or not 0 <= b < 1 for b in o.betas):
        raise ConfigError(f"optim.betas must be two numbers in [0, 1), got {list(o.betas)}")
    if o.step_every_batches < 1:
        raise ConfigError(f"optim.step_every_batches must be >= 1, got {o.step_every_batches}")


def _validate_trainer(t: DictConfig) -> None:
    if t.max_batches < 1:
        raise ConfigError(f"trainer.max_batches must be >= 1, got {t.max_batches}")
    for key in ("val_every_batches", "ckpt_every_batches", "image_every_batches", "val_batches"):
        if t[key] < 0:
            raise ConfigError(f"trainer.{key} must be >= 0, got {t[key]}")
    for key in ("log_every_batches", "devices", "num_nodes", "max_nonfinite"):
        if t[key] < 1:
            raise ConfigError(f"trainer.{key} must be >= 1, got {t[key]}")


def train_groups(d: DataConfig | DictConfig) -> list[int]:
    """The group of each training set: ``data.train_groups``, or one group per set."""
    return list(d.train_groups) or list(range(len(d.train_sets)))


def train_weights(d: DataConfig | DictConfig) -> list[float]:
    """The weight of each training group: ``data.train_weights``, or equal weights."""
    return list(d.train_weights) or [1.0] * (max(train_groups(d), default=-1) + 1)


def to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg, resolve=True)


def to_container(cfg: DictConfig) -> dict:
    """Plain dict/list/scalars (safe for ``torch.load(weights_only=True)`` and loggers):
    modes become their plain string values."""
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)  # type: ignore[return-value]


def to_object(cfg: DictConfig) -> Config:
    """The typed dataclass instance."""
    return OmegaConf.to_object(cfg)  # type: ignore[return-value]


def dotted_keys(config: dict, prefix: str = "") -> dict:
    """A nested config as one level of dotted keys (``model.temporal.num_blocks``), the names
    overrides and sweep parameters use; lists stay values."""
    flat = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(dotted_keys(value, f"{name}."))
        else:
            flat[name] = value
    return flat
