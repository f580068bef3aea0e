"""The typed configuration tree: one dataclass per section, :class:`Config` at the root.

These dataclasses are the schema that :func:`lightning_hmd.config.load_config` turns into an
OmegaConf structured config; a mode-valued field takes an enum of :mod:`lightning_hmd.modes`.
Defaults are the HMMR paper settings (``--preset paper`` spells them out explicitly).
Dotted keys used by sweeps: ``data.batch_size``, ``data.seq_len``, ``model.temporal.num_blocks``,
``model.ief_iters``, ``model.delta_t``, ``model.hallucinator``, ``model.shape_discriminator``,
``loss.weights.*``, ``optim.gen_lr``, ``optim.disc_lr``, ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lightning_hmd.modes import (
    DiscriminatorKind,
    Inputs,
    LoggerKind,
    PoseRepr,
    Schedule,
    TemporalKind,
)


@dataclass
class AugmentConfig:
    """Online augmentation of training crops (HMMR's ``tube_augmentation`` defaults:
    ``TubePreprocessor``, ``src/util/tube_augmentation.py``; ``trans_max`` and ``scale_max``
    flags, ``src/config.py``)."""

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
    the 2D sets (``split_balanced``, ``src/config.py``; ``SequenceDataLoader.get_loader``,
    ``src/data_loader_sequence.py``): ``train_groups: [0, 1, 1]``, ``train_weights: [0.5, 0.5]``.
    """

    batch_size: int = 8  # B: sequences per batch
    seq_len: int = 20  # T: frames per training sequence
    img_size: int = 224  # crop side in pixels
    num_workers: int = 2
    inputs: Inputs = Inputs.features  # features: precomputed phi; images: JPEG crops
    # with inputs=features: the feature set to read, by its encoder id (a shard may hold
    # several, `lightning-hmd data features --add`); "": the one set the shards hold
    features: str = ""
    train_sets: list[str] = field(
        default_factory=lambda: [
            "data/h36m/train",
            "data/penn-action/train",
            "data/insta-variety/train",
        ]
    )
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
class MotionDiscConfig:
    """``model.discriminator=motion``: VIBE's motion discriminator
    (``lib/models/motion_discriminator.py``; defaults of ``TRAIN.MOT_DISCR`` in
    ``lib/core/config.py``), judging windows of ``data.seq_len`` poses."""

    hidden: int = 1024  # GRU width
    num_layers: int = 2  # GRU layers
    attention_layers: int = 3
    attention_dropout: float = 0.2


@dataclass
class GRUConfig:
    """``kind=gru``: VIBE's temporal encoder (``lib/models/vibe.py``, ``TemporalEncoder``),
    VIBE's defaults: 2 layers of 1024, a linear layer back to D, the input added."""

    num_layers: int = 2
    hidden: int = 1024
    bidirectional: bool = False  # false: causal (each frame sees the window's past only)
    add_linear: bool = True  # ReLU + linear back to D (always with bidirectional)
    residual: bool = True  # Phi = phi + GRU(phi)


@dataclass
class TCMRConfig:
    """``kind=tcmr``: TCMR's temporal encoder (``lib/models/tcmr.py``): a bidirectional GRU
    over the window and GRUs over the frames before and after each frame, fused by attention."""

    num_layers: int = 2
    hidden: int = 1024
    attention_hidden: int = 256


@dataclass
class TransformerConfig:
    """``kind=transformer``: pre-norm self-attention over the window with sinusoidal positions,
    between a projection D -> width and back, the input added."""

    num_layers: int = 2
    width: int = 512  # d_model
    heads: int = 8
    ff_dim: int = 1024
    dropout: float = 0.1
    causal: bool = False  # true: each frame attends to itself and earlier frames only


@dataclass
class TemporalConfig:
    """Temporal encoder f_movie_strip phi (B, T, D) -> Phi (B, T, D), chosen by ``kind``.

    ``hmmr_conv`` (the default) is configured by the four keys at this level (residual 1D-conv
    blocks, receptive field 4N+1); each other kind by its own block."""

    kind: TemporalKind = TemporalKind.hmmr_conv
    num_blocks: int = 3
    kernel_size: int = 3
    num_groups: int = 32  # GroupNorm groups
    norm_eps: float = 1e-6
    gru: GRUConfig = field(default_factory=GRUConfig)
    tcmr: TCMRConfig = field(default_factory=TCMRConfig)
    transformer: TransformerConfig = field(default_factory=TransformerConfig)


@dataclass
class ModelConfig:
    """Generator and discriminator architecture."""

    encoder: str = "resnet50_v2"  # resnet50_v2 (HMR's TF-slim) | torchvision_resnet50 | small_cnn
    feat_dim: int = 2048  # D: phi / Phi channels
    # HMMR keeps the HMR image encoder fixed (``freeze_phi``, ``src/config.py``)
    freeze_encoder: bool = True
    temporal: TemporalConfig = field(default_factory=TemporalConfig)
    ief_iters: int = 3
    pose_repr: PoseRepr = PoseRepr.axis_angle  # pose in theta: axis_angle (HMMR) | rot6d (6D)
    regressor_hidden: int = 1024
    regressor_dropout: float = 0.5
    delta_t: list[int] = field(default_factory=lambda: [-5, 5])  # empty: no delta heads
    hallucinator: bool = True
    hallucinator_hidden: int = 2048
    # pose: HMMR's per-frame discriminator; motion: VIBE's, over windows of mocap poses
    discriminator: DiscriminatorKind = DiscriminatorKind.pose
    motion_disc: MotionDiscConfig = field(default_factory=MotionDiscConfig)
    shape_discriminator: bool = False  # with discriminator=pose only
    disc_channels: int = 32  # per-joint 1x1 conv channels of the pose discriminator
    disc_hidden: int = 1024  # full-pose MLP width of the pose discriminator
    shape_disc_hidden: int = 10  # hidden width of HMR's shape discriminator
    # HMMR's ``use_hmr_ief_init`` (``src/config.py``): start from an HMR init file
    # (models.hmr_init, or `import-tf --hmr`); "none" or "": start from scratch. The paper
    # preset leaves it to be given.
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
    adv: float = 1.0  # 0: no adversarial prior (no discriminator step, no mocap read)
    shape_prior: float = 1.0
    hallucinate: float = 1.0
    disc: float = 1.0


@dataclass
class LossConfig:
    weights: LossWeights = field(default_factory=LossWeights)


@dataclass
class OptimConfig:
    """Adam for generator and discriminator (TF defaults as in HMMR: ``tf.train.AdamOptimizer``
    in ``src/trainer_sequence_fc.py``; rates ``e_lr`` / ``d_lr`` of ``src/config.py``)."""

    gen_lr: float = 1e-5
    disc_lr: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 0.0
    grad_clip: float = 0.0  # generator gradient-norm clip; 0 = off
    fused: bool = True  # torch's fused Adam kernel (one pass per tensor); false: foreach
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
    SLURM, the job id, so every rank and every requeue of a job agree. None of these keys
    changes what the run learns, so none is part of the config hash."""

    root: str = "runs"
    name: str = ""
    resume: bool = True  # continue from ``root/name/checkpoints/last.ckpt`` when it exists
    # how long a rank waits in a collective (an all-reduce, a barrier) for the others before
    # the job fails: a rank lost with its node ends the job instead of hanging it
    collective_timeout_s: int = 1800


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
