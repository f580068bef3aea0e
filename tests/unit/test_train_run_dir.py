"""Run names derive from the config and the SLURM job, never from a clock."""

from __future__ import annotations

from lightning_hmd.config import load_config, to_container
from lightning_hmd.train.run_dir import config_hash, run_dir, run_name


def test_same_config_same_name_other_config_other_name():
    a = to_container(load_config("tiny"))
    b = to_container(load_config("tiny", overrides=["model.temporal.num_blocks=0"]))
    assert run_name(a, {}) == run_name(to_container(load_config("tiny")), {})
    assert run_name(a, {}) != run_name(b, {})
    assert len(config_hash(a)) == 10
    # where the run goes does not change what it is
    c = to_container(load_config("tiny", overrides=["run.root=/elsewhere"]))
    assert run_name(c, {}) == run_name(a, {})
    assert str(run_dir(c, {})).startswith("/elsewhere/")


def test_slurm_job_and_array_task_and_explicit_name():
    cfg = to_container(load_config("tiny"))
    h = config_hash(cfg)
    assert run_name(cfg, {"SLURM_JOB_ID": "123"}) == f"{h}-slurm123"
    env = {"SLURM_JOB_ID": "130", "SLURM_ARRAY_JOB_ID": "123", "SLURM_ARRAY_TASK_ID": "7"}
    assert run_name(cfg, env) == f"{h}-slurm123_7"
    named = to_container(load_config("tiny", overrides=["run.name=my run/1"]))
    assert run_name(named, {"SLURM_JOB_ID": "1"}) == "my-run-1"
