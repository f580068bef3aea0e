"""The process group ``evaluate`` joins under srun or torchrun, from their variables."""

from __future__ import annotations

from lightning_hmd.evaluation.launch import Ranks, launcher_ranks, slurm_port


def test_a_single_process_has_no_world():
    assert launcher_ranks({}) is None
    # the batch script's own shell inside an allocation: no step of several tasks
    assert launcher_ranks({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "4", "SLURM_PROCID": "0"}) is None
    assert launcher_ranks({"WORLD_SIZE": "1", "RANK": "0", "MASTER_ADDR": "a"}) is None


def test_an_srun_step_meets_at_its_first_node():
    env = {
        "SLURM_JOB_ID": "1234567",
        "SLURM_STEP_NUM_TASKS": "4",
        "SLURM_PROCID": "3",
        "SLURM_STEP_NODELIST": "gpu[07-08]",
        "SLURM_NODELIST": "gpu[07-09]",
    }
    assert launcher_ranks(env) == Ranks(3, 4, "gpu07", 19567)
    assert launcher_ranks({**env, "MASTER_ADDR": "head", "MASTER_PORT": "29400"}) == Ranks(
        3, 4, "head", 29400
    )


def test_torchrun_variables_win():
    env = {"WORLD_SIZE": "2", "RANK": "1", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29501"}
    assert launcher_ranks({**env, "SLURM_STEP_NUM_TASKS": "8", "SLURM_PROCID": "5"}) == Ranks(
        1, 2, "10.0.0.1", 29501
    )


def test_port_rule_is_lightnings():
    assert [slurm_port(j) for j in ("12", "100042", "1234567")] == [15012, 15042, 19567]
