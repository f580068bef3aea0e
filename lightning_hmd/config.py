"""Loading, checking and converting the configuration.

:func:`load_config` turns the typed tree of :mod:`lightning_hmd.config_tree` into an OmegaConf
structured config and merges presets, YAML files and ``key=value`` overrides on top.
Unknown keys, wrong types and values outside a mode's choices (the enums of
:mod:`lightning_hmd.modes`) fail at load time with an error naming the dotted key;
:func:`validate` adds the cross-field checks. The rest converts a loaded config (plain
containers, YAML, the typed object, dotted keys) and reads derived settings from it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from omegaconf import DictConfig, EnumNode, OmegaConf, StringNode
from omegaconf.errors import OmegaConfBaseException

from lightning_hmd.config_tree import Config, DataConfig
from lightning_hmd.errors import ConfigError
from lightning_hmd.modes import DiscriminatorKind


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


def _string_key(cfg: DictConfig, key: str) -> bool:
    """Whether the schema types ``key`` as a string."""
    node = cfg
    for part in key.split("."):
        if not isinstance(node, DictConfig) or part not in node:
            return False
        node = node._get_node(part)
    return isinstance(node, StringNode)


def _override_node(cfg: DictConfig, item: str) -> DictConfig:
    """One ``key=value`` as a config node. The value is read as YAML, except that a string
    key takes a number's or a boolean's text as written: YAML reads a run name such as
    ``1234e56789`` (a config hash) as a float, ``inf``, and ``true`` as ``True``."""
    node = OmegaConf.from_dotlist([item])
    key, text = item.split("=", 1)
    value = OmegaConf.select(node, key)
    if isinstance(value, bool | int | float) and _string_key(cfg, key):
        OmegaConf.update(node, key, text)
    return node


def _apply_overrides(cfg: DictConfig, overrides: Sequence[str]) -> DictConfig:
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        cfg = _merge(cfg, _override_node(cfg, item), f"override {item!r}")
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
    for key in (
        "data.batch_size",
        "data.seq_len",
        "model.ief_iters",
        "model.feat_dim",
        "run.collective_timeout_s",
    ):
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
    _validate_temporal(m)
    _validate_discriminator(m, cfg.data)
    if m.temporal.kind == "hmmr_conv" and m.feat_dim % m.temporal.num_groups:
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


def _validate_temporal(m: DictConfig) -> None:
    """The chosen temporal encoder's block (``models/temporal_registry.py``)."""
    t = m.temporal
    for kind, key in (("gru", "hidden"), ("gru", "num_layers"), ("tcmr", "hidden"),
                      ("tcmr", "num_layers"), ("tcmr", "attention_hidden"),
                      ("transformer", "width"), ("transformer", "num_layers"),
                      ("transformer", "heads"), ("transformer", "ff_dim")):  # fmt: skip
        if t.kind == kind and t[kind][key] < 1:
            raise ConfigError(f"model.temporal.{kind}.{key} must be >= 1, got {t[kind][key]}")
    g, a = t.gru, t.transformer
    if t.kind == "gru" and not (g.bidirectional or g.add_linear) and g.hidden != m.feat_dim:
        raise ConfigError(
            f"model.temporal.gru.hidden={g.hidden} must equal model.feat_dim={m.feat_dim} "
            "without the linear layer (gru.add_linear=false, gru.bidirectional=false)"
        )
    if t.kind == "transformer":
        if a.width % a.heads or a.width % 2:
            raise ConfigError(
                f"model.temporal.transformer.width={a.width} must be even and divisible by "
                f"model.temporal.transformer.heads={a.heads}"
            )
        if not 0 <= a.dropout < 1:
            raise ConfigError(
                f"model.temporal.transformer.dropout must be in [0, 1), got {a.dropout}"
            )


def _validate_discriminator(m: DictConfig, d: DictConfig) -> None:
    """VIBE's motion discriminator judges windows of ``data.seq_len`` poses, not shapes."""
    DiscriminatorKind.parse(m.discriminator, "model.discriminator")
    if m.discriminator != "motion":
        return
    md = m.motion_disc
    for key in ("hidden", "num_layers", "attention_layers"):
        if md[key] < 1:
            raise ConfigError(f"model.motion_disc.{key} must be >= 1, got {md[key]}")
    if not 0 <= md.attention_dropout < 1:
        raise ConfigError(
            f"model.motion_disc.attention_dropout must be in [0, 1), got {md.attention_dropout}"
        )
    if m.shape_discriminator:
        raise ConfigError(
            "model.shape_discriminator=true needs model.discriminator=pose: the motion "
            "discriminator judges poses only (as VIBE's)"
        )
    if d.seq_len < 2:
        raise ConfigError(
            f"model.discriminator=motion judges windows of data.seq_len frames; "
            f"data.seq_len={d.seq_len} has no motion (use >= 2, or model.discriminator=pose)"
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
        raise ConfigError(
            f"data.train_weights must be >= 0 with a positive sum, got {list(d.train_weights)}"
        )
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
    for key in (
        "gen_lr",
        "disc_lr",
        "grad_clip",
        "warmup_batches",
        "min_lr_factor",
        "lr_gamma",
        "eps",
        "weight_decay",
    ):
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


def adversarial(cfg: DictConfig) -> bool:
    """Whether a run trains with the adversarial prior (``loss.weights.adv`` > 0). Without
    it the discriminator is neither run nor trained, and no mocap is read: an HMR stage
    fitting the joints alone."""
    return float(cfg.loss.weights.adv) > 0


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
