"""The requeue signal, the job id scontrol takes, and the config W&B receives."""

from __future__ import annotations

import os
import signal

from lightning_hmd.config import dotted_keys, load_config, to_container
from lightning_hmd.train.requeue import RequeueSignal, requeue_job, slurm_job_id


def test_requeue_signal_is_recorded_while_installed_and_the_old_handler_comes_back():
    seen = []
    previous = signal.signal(signal.SIGUSR1, lambda *a: seen.append("old"))
    try:
        flag = RequeueSignal().install()
        assert not flag.received
        os.kill(os.getpid(), signal.SIGUSR1)
        assert flag.received and seen == []
        flag.uninstall()
        os.kill(os.getpid(), signal.SIGUSR1)
        assert seen == ["old"]
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_job_id_for_scontrol():
    assert slurm_job_id({"SLURM_JOB_ID": "41"}) == "41"
    env = {"SLURM_JOB_ID": "42", "SLURM_ARRAY_JOB_ID": "40", "SLURM_ARRAY_TASK_ID": "2"}
    assert slurm_job_id(env) == "40_2"  # an array task is requeued by its array id
    assert slurm_job_id({}) is None
    assert requeue_job({}).startswith("not requeued: no SLURM job id")
    assert "not requeued" in requeue_job({"SLURM_JOB_ID": "1; rm -rf /"})


def test_dotted_keys_name_config_entries_as_overrides_do():
    config = to_container(load_config("tiny"))
    flat = dotted_keys(config)
    assert flat["model.temporal.num_blocks"] == config["model"]["temporal"]["num_blocks"]
    assert flat["model.delta_t"] == config["model"]["delta_t"]  # lists stay values
    assert not any(isinstance(v, dict) and v for v in flat.values())
    assert dotted_keys({"a": {"b": {}}, "c": 1}) == {"a.b": {}, "c": 1}
