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


def test_resume_takes_the_newest_of_last_and_requeue_checkpoints(tmp_path):
    import os

    from lightning_hmd.train.fit import prune_requeue_checkpoints, resume_checkpoint

    assert resume_checkpoint(tmp_path) is None
    (tmp_path / "checkpoints").mkdir()
    last = tmp_path / "checkpoints" / "last.ckpt"
    files = {last: 100, tmp_path / "hpc_ckpt_1.ckpt": 200, tmp_path / "hpc_ckpt_2.ckpt": 300}
    for path, stamp in files.items():
        path.write_bytes(b"x")
        os.utime(path, ns=(stamp, stamp))
    newest = resume_checkpoint(tmp_path)
    assert newest == tmp_path / "hpc_ckpt_2.ckpt"  # SIGUSR1 saved after the last cadence save
    assert prune_requeue_checkpoints(tmp_path, keep=newest) == [tmp_path / "hpc_ckpt_1.ckpt"]
    assert sorted(p.name for p in tmp_path.glob("hpc_ckpt_*")) == ["hpc_ckpt_2.ckpt"]
    os.utime(last, ns=(400, 400))  # a later cadence checkpoint wins again
    assert resume_checkpoint(tmp_path) == last
    assert prune_requeue_checkpoints(tmp_path, keep=last) == [tmp_path / "hpc_ckpt_2.ckpt"]
