"""One process per run directory (``train/run_lock.py``) and what a resumed run may change of
its config (``train/run_dir.py``)."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from lightning_hmd.config import load_config, to_container
from lightning_hmd.train import run_lock
from lightning_hmd.train.run_dir import (
    RESUME_SAFE_KEYS,
    ConfigChangedError,
    check_resume_config,
    config_changes,
)
from lightning_hmd.train.run_lock import LOCK_NAME, RunLock, RunLockedError, hold_run, is_rank_zero

HOLDER = """
import sys, time
from lightning_hmd.train.run_lock import RunLock
lock = RunLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(120)
"""


def _holder(run, **env):
    """A process that takes the lock of ``run`` and sleeps; returns once it holds it."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(run)], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, **env})  # fmt: skip
    assert proc.stdout.readline().strip() == "locked"
    return proc


def _recorded(run):
    return json.loads((run / LOCK_NAME).read_text())


def test_second_process_is_refused_naming_the_holder_and_takes_over_once_it_is_killed(tmp_path):
    run = tmp_path / "run"
    proc = _holder(run, SLURM_JOB_ID="4242")
    try:
        held = _recorded(run)
        assert held["pid"] == proc.pid and held["slurm_job"] == "4242"
        assert held["host"] == socket.gethostname() and held["started"]
        t0 = time.monotonic()
        with pytest.raises(RunLockedError) as err:
            RunLock(run, {}).acquire()
        assert time.monotonic() - t0 < 5  # refused at once, not after waiting
        msg = str(err.value)
        assert "\n" not in msg
        assert f"host {socket.gethostname()}" in msg and f"pid {proc.pid}" in msg
        assert "SLURM job 4242" in msg and str(run) in msg
        assert _recorded(run)["pid"] == proc.pid  # the refused one wrote nothing
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # the kernel dropped the dead holder's lock: the next one takes it over and says from whom
    lock = RunLock(run, {"SLURM_JOB_ID": "4243"}).acquire()
    try:
        assert lock.locked and lock.previous["pid"] == proc.pid
        held = _recorded(run)
        assert held["pid"] == os.getpid() and held["slurm_job"] == "4243"
    finally:
        lock.release()
    assert (run / LOCK_NAME).read_text() == ""  # a clean release names no holder
    with RunLock(run, {}) as again:
        assert again.previous is None


def test_a_lock_file_of_a_dead_process_is_taken_over_and_the_new_holder_recorded(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    pid = int(dead.stdout)
    stale = {"host": socket.gethostname(), "pid": pid, "slurm_job": "77", "started": "then"}
    (run / LOCK_NAME).write_text(json.dumps(stale))
    with hold_run(run, {}) as lock:
        assert lock.previous == stale
        assert _recorded(run)["pid"] == os.getpid() and _recorded(run)["slurm_job"] is None
        out = capsys.readouterr().out
        assert f"took over {run / LOCK_NAME} from host " in out
        assert f"pid {pid}, SLURM job 77" in out


def test_two_locks_in_one_process_conflict_too(tmp_path):
    held = f"pid {os.getpid()}, no SLURM job"
    with RunLock(tmp_path, {}), pytest.raises(RunLockedError, match=held):
        RunLock(tmp_path, {}).acquire()


def test_only_global_rank_zero_locks(tmp_path):
    assert is_rank_zero({}) and is_rank_zero({"SLURM_PROCID": "0", "LOCAL_RANK": "0"})
    for env in ({"RANK": "1"}, {"SLURM_PROCID": "3"}, {"LOCAL_RANK": "1"}, {"NODE_RANK": "1"},
                {"SLURM_PROCID": "0", "LOCAL_RANK": "1"}):  # fmt: skip
        assert not is_rank_zero(env), env
    with RunLock(tmp_path, {}):
        # the other ranks of the job that holds it go on without the lock
        with hold_run(tmp_path, {"SLURM_PROCID": "1", "SLURM_JOB_ID": "9"}) as lock:
            assert lock is None
        with pytest.raises(RunLockedError), hold_run(tmp_path, {"SLURM_PROCID": "0"}):
            pass


def test_a_file_system_without_flock_warns_and_goes_on(tmp_path, monkeypatch, capsys):
    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(run_lock.fcntl, "flock", no_flock)
    with RunLock(tmp_path, {}) as lock:
        assert not lock.locked
        assert _recorded(tmp_path)["pid"] == os.getpid()
    err = capsys.readouterr().err
    assert f"cannot lock {tmp_path / LOCK_NAME} (No locks available)" in err
    assert "no flock" in err


def _tiny(*overrides):
    return to_container(load_config("tiny", overrides=list(overrides)))


def test_config_changes_name_nested_keys_with_dots_and_leave_out_safe_keys():
    base = _tiny()
    assert config_changes(base, _tiny()) == []
    changed = _tiny("model.temporal.num_blocks=0", "optim.gen_lr=0.01", "data.num_workers=3")
    assert config_changes(base, changed) == [
        "data.num_workers: 0 -> 3",
        "model.temporal.num_blocks: 1 -> 0",
        "optim.gen_lr: 0.0001 -> 0.01",
    ]
    safe = _tiny("trainer.max_batches=99", "trainer.log_every_batches=1",
                 "trainer.ckpt_every_batches=7", "trainer.image_every_batches=0",
                 "trainer.val_every_batches=0", "trainer.val_batches=2",
                 "trainer.progress_bar=false", "run.name=x", "run.root=/elsewhere",
                 "run.resume=false")  # fmt: skip
    assert config_changes(base, safe) == []
    both = _tiny("trainer.max_batches=99", "data.train_sets=[a,b]", "data.train_weights=[1,1]")
    assert config_changes(base, both) == [
        f'data.train_sets: {json.dumps(base["data"]["train_sets"])} -> ["a", "b"]',
        "data.train_weights: [1.0] -> [1.0, 1.0]",
    ]
    assert "data.num_workers" not in RESUME_SAFE_KEYS


def test_keys_the_record_lacks_count_at_their_schema_default():
    current = _tiny()
    old = _tiny()
    del old["eval"]["protocol"]  # a key added to the schema after the run started
    assert config_changes(old, current) == []
    assert config_changes(old, _tiny("eval.protocol=vibe")) == ['eval.protocol: "hmmr" -> "vibe"']
    old["model"]["retired"] = 3  # a key since removed from the schema
    assert config_changes(old, current) == ["model.retired: 3 -> <absent>"]


def test_check_resume_config_refuses_listing_every_change_unless_allowed(tmp_path):
    ckpt = tmp_path / "last.ckpt"
    old, new = _tiny(), _tiny("optim.gen_lr=0.01", "loss.weights.adv=2", "trainer.max_batches=9")
    with pytest.raises(ConfigChangedError) as err:
        check_resume_config(old, new, ckpt)
    first, *rest = str(err.value).splitlines()
    assert first.startswith(f"refusing to resume: {ckpt} was trained with another config")
    assert "--allow-config-change" in first
    assert rest == ["  loss.weights.adv: 1.0 -> 2.0", "  optim.gen_lr: 0.0001 -> 0.01"]
    assert check_resume_config(old, new, ckpt, allow=True) == [r.strip() for r in rest]
    assert check_resume_config(old, _tiny("trainer.max_batches=9"), ckpt) == []
