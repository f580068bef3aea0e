"""Configuration: schema, presets, overrides, errors naming the dotted key."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
import torch
from omegaconf import OmegaConf

from lightning_hmd import modes
from lightning_hmd.commands import main
from lightning_hmd.config import (
    ConfigError,
    available_presets,
    config_from_container,
    dotted_keys,
    init_checkpoint,
    load_config,
    to_container,
    to_object,
    train_groups,
    train_weights,
)
from lightning_hmd.config_tree import AugmentConfig, Config
from lightning_hmd.modes import Inputs, LoggerKind, PoseRepr, Schedule, TemporalKind
from lightning_hmd.train.run_dir import config_hash

NO_INIT = "model.init_checkpoint=none"

SWEEP_KEYS = (
    "data.batch_size",
    "data.seq_len",
    "model.temporal.num_blocks",
    "model.ief_iters",
    "model.delta_t",
    "model.hallucinator",
    "model.shape_discriminator",
    "loss.weights.kp2d",
    "loss.weights.joints3d",
    "loss.weights.smpl",
    "loss.weights.shape_const",
    "loss.weights.adv",
    "loss.weights.shape_prior",
    "loss.weights.hallucinate",
    "optim.gen_lr",
    "optim.disc_lr",
    "seed",
)

PAPER_VALUES = {
    "data.batch_size": 8,
    "data.seq_len": 20,
    "model.temporal.num_blocks": 3,
    "model.ief_iters": 3,
    "model.delta_t": [-5, 5],
    "model.hallucinator": True,
    "model.shape_discriminator": False,
    "loss.weights.kp2d": 60.0,
    "loss.weights.joints3d": 60.0,
    "loss.weights.smpl": 60.0,
    "loss.weights.shape_const": 1.0,
    "loss.weights.adv": 1.0,
    "loss.weights.shape_prior": 1.0,
    "loss.weights.hallucinate": 1.0,
    "optim.gen_lr": 1e-5,
    "optim.disc_lr": 1e-4,
    "seed": 1,
    "model.init_parts": ["mean", "f3d"],
    "data.train_groups": [0, 1, 1],
    "data.train_weights": [0.5, 0.5],
    "eval.protocol": "hmmr",
}


def test_presets_listed():
    assert {"paper", "tiny"} <= set(available_presets())


@pytest.mark.parametrize("key", SWEEP_KEYS)
def test_sweep_keys_exist(key):
    cfg = load_config()
    assert OmegaConf.select(cfg, key, throw_on_missing=True) is not None


def test_paper_preset_values():
    cfg = load_config("paper", overrides=["model.init_checkpoint=hmr.ckpt"])
    for key, value in PAPER_VALUES.items():
        got = OmegaConf.select(cfg, key)
        got = list(got) if OmegaConf.is_list(got) else got
        assert got == value, key


def test_tiny_preset_is_small_and_valid():
    cfg = load_config("tiny")
    assert cfg.model.feat_dim < 256
    assert cfg.model.feat_dim % cfg.model.temporal.num_groups == 0
    assert isinstance(to_object(cfg), Config)


def test_override_order_preset_file_dotlist(tmp_path):
    yaml_file = tmp_path / "exp.yaml"
    yaml_file.write_text("data:\n  seq_len: 12\nmodel:\n  delta_t: [-3]\n")
    cfg = load_config("tiny", [yaml_file], ["data.seq_len=16", "model.delta_t=[]"])
    assert cfg.data.seq_len == 16  # dotlist beats file
    assert list(cfg.model.delta_t) == []  # empty list = no delta heads
    assert cfg.data.batch_size == 2  # from the preset


def test_string_numbers_are_converted():
    cfg = load_config(overrides=["optim.gen_lr=3e-4", "data.batch_size=16"])
    assert cfg.optim.gen_lr == pytest.approx(3e-4)
    assert cfg.data.batch_size == 16


@pytest.mark.parametrize("name", ["1234e56789", "0012", "1e5", "true", "3.50"])
def test_a_string_key_keeps_the_text_of_a_number(name):
    """A run name that YAML would read as a number or a boolean stays as written (a config
    hash such as ``1234e56789`` became ``inf``, so passing a run's printed name back started
    another run instead of resuming it); numeric keys still convert."""
    cfg = load_config(overrides=[f"run.name={name}", "seed=7", "run.root=runs"])
    assert cfg.run.name == name and cfg.seed == 7 and cfg.run.root == "runs"


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("model.temporl.num_blocks=2", "model.temporl"),
        ("data.batch_size=abc", "data.batch_size"),
        ("model.hallucinator=maybe", "model.hallucinator"),
        ("loss.weights.kp3d=1", "loss.weights.kp3d"),
    ],
)
def test_bad_override_names_dotted_key(override, named):
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_config(overrides=[override])


def test_bad_key_in_yaml_names_file_and_key(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("optim:\n  gen_learning_rate: 1.0\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*optim\.gen_learning_rate"):
        load_config(files=[f])


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("model.delta_t=[0,5]", "offset 0"),
        ("model.delta_t=[5,5]", "duplicate"),
        ("model.delta_t=[-25]", "seq_len"),
        ("model.temporal.num_blocks=-1", "num_blocks"),
        ("model.temporal.num_groups=30", "num_groups"),
        ("data.inputs=pixels", "data.inputs must be one of features, images"),
        ("data.train_weights=[1.0]", "data.train_weights has 1 entries for 3 training groups"),
        ("data.train_groups=[0,1]", "data.train_groups has 2 entries but data.train_sets has 3"),
        ("data.train_groups=[0,2,2]", "train_groups must number the groups 0, 1, ... without"),
        ("eval.protocol=spin", "eval.protocol must be one of hmmr, vibe, tcmr, got 'spin'"),
        ("optim.gen_lr=nan", "optim.gen_lr must be a finite number >= 0, got nan"),
        ("optim.disc_lr=inf", "optim.disc_lr must be a finite number >= 0, got inf"),
        ("optim.betas=[0.9,1.0]", r"optim.betas must be two numbers in \[0, 1\)"),
        ("loss.weights.adv=nan", "loss.weights.adv must be a finite number >= 0, got nan"),
        ("loss.weights.kp2d=-1", "loss.weights.kp2d must be a finite number >= 0"),
        ("data.seq_len=0", "data.seq_len must be >= 1, got 0"),  # not a model.delta_t error
        ("run.collective_timeout_s=0", "run.collective_timeout_s must be >= 1, got 0"),
        ("data.train_weights=[0,0,0]", "positive sum"),
        ("data.train_weights=[1,-1,1]", "positive sum"),
        ("data.augment.flip_prob=1.5", "flip_prob"),
        ("data.augment.scale_max=-0.1", "scale_max"),
        ("data.train_batches_per_epoch=-1", "train_batches_per_epoch"),
        ("optim.schedule=linear", "optim.schedule must be one of constant, cosine, step"),
        ("optim.warmup_batches=-5", "optim.warmup_batches"),
        ("optim.step_every_batches=0", "optim.step_every_batches"),
    ],
)
def test_cross_field_validation(override, match):
    with pytest.raises(ConfigError, match=match):
        load_config(overrides=[override])


def test_unknown_preset_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="unknown preset"):
        load_config("nope")
    with pytest.raises(ConfigError, match="not found"):
        load_config(files=[tmp_path / "missing.yaml"])


def test_cli_config_prints_yaml(capsys):
    assert (
        main(["config", "--preset", "paper", "optim.gen_lr=2e-5", "model.init_checkpoint=h.pt"])
        == 0
    )
    printed = OmegaConf.create(capsys.readouterr().out)
    assert printed.optim.gen_lr == pytest.approx(2e-5)
    assert printed.model.temporal.num_blocks == 3
    assert printed.model.init_checkpoint == "h.pt"


def test_paper_preset_needs_an_hmr_init_file_or_an_explicit_none(capsys):
    """HMMR starts f_3D from HMR (use_hmr_ief_init): the preset fails before any work, naming
    the key and how to get a file, unless "none" says "from scratch"."""
    assert main(["config", "--preset", "paper"]) == 2
    err = capsys.readouterr().err
    assert "model.init_checkpoint: this preset starts f_3D and the mean parameters from HMR" in err
    assert "lightning-hmd import-tf --hmr" in err and "model.init_checkpoint=none" in err
    with pytest.raises(ConfigError, match="model.init_checkpoint"):
        load_config("paper", overrides=["optim.gen_lr=1e-4"])
    assert init_checkpoint(load_config("paper", overrides=[NO_INIT])) is None
    assert init_checkpoint(load_config("paper", overrides=["model.init_checkpoint=a.pt"])) == "a.pt"
    # a file given after the preset also satisfies it, and other presets need none
    assert init_checkpoint(load_config("tiny")) is None


def test_cli_bad_key_exits_nonzero_naming_key():
    proc = subprocess.run(
        [sys.executable, "-m", "lightning_hmd", "config", "model.temporl.num_blocks=2"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "model.temporl" in proc.stderr
    assert proc.stdout == ""


def test_data_sets_and_weights():
    paper = load_config("paper", overrides=[NO_INIT])
    assert train_groups(paper.data) == [0, 1, 1] and train_weights(paper.data) == [0.5, 0.5]
    assert paper.data.inputs == "features" and paper.data.augment.flip_prob == 0.5
    schema = load_config()
    assert train_groups(schema.data) == [0, 1, 2]  # no groups: one per set
    assert train_weights(schema.data) == [0.5, 0.25, 0.25]
    tiny = load_config("tiny")
    assert list(tiny.data.train_sets) == ["data/synthetic/train"]
    assert tiny.data.inputs == "images"
    cfg = load_config(overrides=["data.train_sets=[a,b]", "data.train_weights=[]"])
    assert train_weights(cfg.data) == [1.0, 1.0]
    assert isinstance(to_object(cfg).data.augment, AugmentConfig)


MODE_KEYS = {
    "data.inputs": Inputs,
    "model.pose_repr": PoseRepr,
    "optim.schedule": Schedule,
    "logger.kind": LoggerKind,
    "model.temporal.kind": TemporalKind,
}
# config_hash of the schema defaults' container: a run's derived name must not change with how
# the schema spells its modes (the value when every mode was a plain str field); a new field
# changes it (last: model.discriminator, model.motion_disc and data.features)
DEFAULT_CONFIG_HASH = "346b15dba9"


def test_default_config_hash_is_unchanged():
    assert config_hash(to_container(OmegaConf.structured(Config))) == DEFAULT_CONFIG_HASH
    assert config_hash(to_container(load_config())) == DEFAULT_CONFIG_HASH


def test_every_mode_member_is_named_by_its_value():
    """OmegaConf reads a mode by member name and writes it back as the name."""
    kinds = [v for v in vars(modes).values() if isinstance(v, type) and issubclass(v, modes.Mode)]
    assert set(MODE_KEYS.values()) <= set(kinds)
    for kind in kinds:
        for member in kind:
            assert member.name == member.value and str(member) == f"{member}" == member.value


@pytest.mark.parametrize(("key", "kind"), MODE_KEYS.items())
def test_modes_load_from_plain_strings_and_compare_with_them(key, kind):
    for member in kind:
        cfg = load_config(overrides=[f"{key}={member.value}"])
        got = OmegaConf.select(cfg, key)
        assert got is member and got == member.value


@pytest.mark.parametrize(("key", "kind"), MODE_KEYS.items())
def test_a_bad_mode_names_the_key_and_its_choices(key, kind, tmp_path):
    choices = ", ".join(m.value for m in kind)
    with pytest.raises(ConfigError) as err:
        load_config(overrides=[f"{key}=bogus"])
    assert str(err.value) == (
        f"override '{key}=bogus': {key} must be one of {choices}, got 'bogus'"
    )
    *sections, name = key.split(".")
    nested: dict = {name: "bogus"}
    for section in reversed(sections):
        nested = {section: nested}
    f = tmp_path / "bad.yaml"
    f.write_text(OmegaConf.to_yaml(OmegaConf.create(nested)))
    with pytest.raises(ConfigError, match=rf"bad\.yaml: {key} must be one of {choices}, got"):
        load_config(files=[f])
    with pytest.raises(ConfigError, match=rf"checkpoint config: {key} must be one of {choices}"):
        config_from_container(nested)


def test_containers_hold_modes_as_plain_strings():
    """Checkpoint hyper-parameters and logged configs are plain containers: torch.load with
    weights_only refuses enum objects."""
    cfg = load_config("tiny", overrides=["model.pose_repr=rot6d", "optim.schedule=cosine",
                                         "logger.kind=csv"])  # fmt: skip
    config = to_container(cfg)
    flat = dotted_keys(config)
    for key, kind in MODE_KEYS.items():
        assert type(flat[key]) is str and flat[key] == OmegaConf.select(cfg, key).value, key
        assert not isinstance(flat[key], kind)
    buf = io.BytesIO()
    torch.save({"hyper_parameters": {"config": config}}, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)["hyper_parameters"]["config"]
    assert loaded == config
    again = config_from_container(loaded)
    assert to_container(again) == config and again.model.pose_repr is PoseRepr.rot6d
    assert "pose_repr: rot6d" in OmegaConf.to_yaml(cfg)  # `lightning-hmd config` prints this


def test_modes_live_below_config_and_models():
    """config.py takes its modes from lightning_hmd.modes, not from the training package, and
    the regressor takes them from there rather than from config.py."""
    code = (
        "import sys\n"
        "import lightning_hmd.models.regressor\n"
        "assert 'lightning_hmd.config' not in sys.modules\n"
        "import lightning_hmd.config\n"
        "assert not any(m.startswith('lightning_hmd.train') for m in sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
