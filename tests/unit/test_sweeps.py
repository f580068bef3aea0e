"""The sweep files: W&B's format, and every parameter value a valid config override."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from lightning_hmd.config import ConfigError, load_config
from lightning_hmd.experiments.sweeps import SweepError, expand, load_sweep, override, preset_of

SWEEPS = sorted((Path(__file__).parents[2] / "sweeps").glob("*.yaml"))


def test_the_paper_ablations_have_sweep_files():
    names = {p.stem for p in SWEEPS}
    assert {"delta_offsets", "temporal_depth", "hallucinator", "loss_weights", "seq_len"} <= names


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_every_parameter_resolves_against_the_schema(path: Path):
    sweep = load_sweep(path)
    assert sweep.metric == "val/pa_mpjpe" and sweep.goal == "minimize"
    assert sweep.command[:3] == ("${env}", "lightning-hmd", "train")
    for p in sweep.parameters:
        samples = p.values if p.values is not None else p.bounds
        for value in samples:
            # exactly the argument `wandb agent` passes with ${args_no_hyphens}
            cfg = load_config("paper", overrides=["model.init_checkpoint=none",
                                                  override(p.key, value)])  # fmt: skip
            got = OmegaConf.select(cfg, p.key)
            got = OmegaConf.to_container(got) if OmegaConf.is_config(got) else got
            assert got == value, (p.key, value, got)


def test_the_temporal_depth_sweep_spans_receptive_fields_1_to_21():
    (p,) = load_sweep(Path(SWEEPS[0]).with_name("temporal_depth.yaml")).parameters
    from lightning_hmd.models.temporal import TemporalEncoder

    fields = [TemporalEncoder(8, n, num_groups=4).receptive_field for n in p.values]
    assert fields == [1, 5, 9, 13, 17, 21]


def test_a_wrong_key_or_file_is_named(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "method: grid\nmetric: {name: val/pa_mpjpe}\nparameters: {model.nope: {values: [1]}}\n"
        "command: [lightning-hmd, train, '${args_no_hyphens}']\n"
    )
    sweep = load_sweep(bad)
    with pytest.raises(ConfigError, match="model.nope"):
        load_config("paper", overrides=["model.init_checkpoint=none", override("model.nope", 1)])
    assert sweep.name == "bad"
    bad.write_text(
        "method: grid\nmetric: {name: x}\nparameters: {a: {values: [1]}}\ncommand: [x]\n"
    )
    with pytest.raises(SweepError, match="args_no_hyphens"):
        load_sweep(bad)
    bad.write_text("method: anneal\nmetric: {name: x}\nparameters: {}\ncommand: [x]\n")
    with pytest.raises(SweepError, match="method"):
        load_sweep(bad)


def test_grid_expansion_with_seeds_and_random_draws_are_reproducible():
    sweeps = {p.stem: load_sweep(p) for p in SWEEPS}
    trials = expand(sweeps["delta_offsets"], seeds=3)
    assert len(trials) == 3 * 3 and [t.seed for t in trials[:3]] == [1, 2, 3]
    assert trials[3].params == {"model.delta_t": [-5, 5]} and trials[3].index == 1
    assert trials[3].overrides() == ["model.delta_t=[-5, 5]", "seed=1"]
    assert trials[3].name(sweeps["delta_offsets"]) == "delta_offsets-001-seed1"
    assert preset_of(sweeps["delta_offsets"]) == "paper"
    a, b = expand(sweeps["loss_weights"]), expand(sweeps["loss_weights"])
    assert len(a) == 24 and [t.params for t in a] == [t.params for t in b]
    for t in a:
        assert 10.0 <= t.params["loss.weights.kp2d"] <= 300.0
        assert 0.1 <= t.params["loss.weights.adv"] <= 10.0
    assert len({t.params["loss.weights.adv"] for t in a}) == 24
    assert len(expand(sweeps["loss_weights"], count=5)) == 5


def test_where_keeps_the_grid_indices_and_preset_replaces_the_commands():
    from lightning_hmd.experiments.sweeps import SweepError, expand, preset_of, with_preset

    sweep = load_sweep(Path(SWEEPS[0]).with_name("temporal_models.yaml"))
    trials = expand(sweep, seeds=3, where={"model.discriminator": "pose"})
    assert [t.index for t in trials[::3]] == [0, 2, 4, 6, 8]  # 5 encoders x pose
    assert [t.params["model.temporal.kind"] for t in trials[::3]] == [
        "hmmr_conv", "gru", "tcmr", "transformer", "none"]  # fmt: skip
    assert {t.seed for t in trials} == {1, 2, 3} and len(trials) == 15
    assert preset_of(with_preset(sweep, "quickstart")) == "quickstart"
    with pytest.raises(SweepError, match="not swept"):
        expand(sweep, where={"seed": "1"})
    with pytest.raises(SweepError, match="values of model.discriminator are pose, motion"):
        expand(sweep, where={"model.discriminator": "shape"})


def test_the_ablations_accept_any_encoder_but_not_another_encoders_sizes(tmp_path: Path):
    """Every ablation sweep runs with any temporal encoder (`model.temporal.kind=K` for all
    its trials), except one that varies the sizes of another encoder: temporal_depth's
    num_blocks with gru would train one model six times."""
    from lightning_hmd.experiments.sweep_run import run_sweep
    from lightning_hmd.experiments.sweeps import check_encoder_keys

    kinds = ("hmmr_conv", "gru", "tcmr", "transformer", "none")
    for path in SWEEPS:
        sweep = load_sweep(path)
        own = "model.temporal.num_blocks" in {p.key for p in sweep.parameters}
        for kind in kinds:
            if own and kind != "hmmr_conv":
                said = (rf"{path.name}: sweeps model.temporal.num_blocks, a size of the "
                        rf"hmmr_conv temporal encoder, but the trials train "
                        rf"model.temporal.kind={kind}")  # fmt: skip
                with pytest.raises(SweepError, match=said):
                    check_encoder_keys(sweep, kind)
            else:
                check_encoder_keys(sweep, kind)
    (tmp_path / "gru_width.yaml").write_text(
        "name: gru_width\nprogram: lightning-hmd\nmethod: grid\n"
        "metric: {name: val/pa_mpjpe, goal: minimize}\n"
        "parameters:\n  model.temporal.gru.hidden: {values: [32, 64]}\n"
        "  model.temporal.num_blocks: {value: 2}\n"  # one value: not an ablation of it
        'command: ["${env}", "lightning-hmd", "train", "--preset", "tiny", "${args_no_hyphens}"]\n'
    )
    gru_width = load_sweep(tmp_path / "gru_width.yaml")
    check_encoder_keys(gru_width, "gru")
    with pytest.raises(SweepError, match=r"sweep that encoder's own keys \(model.temporal."
                       r"transformer.\)"):  # fmt: skip
        check_encoder_keys(gru_width, "transformer")
    with pytest.raises(SweepError, match=r"own keys \(none: it has no sizes\)"):
        check_encoder_keys(gru_width, "none")
    # sweep run refuses before any trial trains (the dry run plans nothing)
    depth = load_sweep(next(p for p in SWEEPS if p.name == "temporal_depth.yaml"))
    over = ["model.temporal.kind=gru", "model.init_checkpoint=none", f"run.root={tmp_path}"]
    with pytest.raises(SweepError, match="model.temporal.kind=gru, which does not read it"):
        run_sweep(depth, overrides=over, dry_run=True, echo=lambda _: None)
    assert run_sweep(gru_width, overrides=over, dry_run=True, echo=lambda _: None)
