"""The sbatch script: Lightning's SLURM rules, the Trainer's topology from the same numbers,
one run directory for every rank and requeue."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from lightning_hmd.commands import main
from lightning_hmd.config import ConfigError, load_config, to_container
from lightning_hmd.experiments.slurm import JobSpec, rendezvous_lines, sbatch_script, submit
from lightning_hmd.train.run_dir import run_dir

INIT = "model.init_checkpoint=/data/hmr_init.pt"  # the paper preset needs one


def _srun_args(script: str) -> list[str]:
    """The command srun starts on every task, after srun's own flags."""
    (line,) = [ln for ln in script.splitlines() if ln.startswith("srun ")]
    args = shlex.split(line)[1:]
    assert args[0] == "--kill-on-bad-exit=1"  # one failed task ends the step
    return args[1:]


def test_script_follows_lightnings_slurm_rules(tmp_path: Path):
    spec = JobSpec(nodes=4, gpus_per_node=8, time="2-00:00:00", partition="gpu")
    script, out = sbatch_script("paper", [f"run.root={tmp_path}", INIT], spec)
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash -l"
    for want in ("--nodes=4", "--ntasks-per-node=8", "--gres=gpu:8", "--signal=SIGUSR1@90",
                 "--requeue", "--time=2-00:00:00", "--partition=gpu"):  # fmt: skip
        assert f"#SBATCH {want}" in lines
    assert not any("B:" in ln for ln in lines)  # the signal must reach the tasks
    assert not any("gpus-per-task" in ln or "gpu-bind" in ln for ln in lines)
    args = _srun_args(script)
    assert args[:5] == [sys.executable, "-m", "lightning_hmd", "train", "--preset"]
    assert args[5] == "paper"
    cfg = load_config("paper", overrides=args[6:])
    assert (cfg.trainer.num_nodes, cfg.trainer.devices, cfg.trainer.accelerator) == (4, 8, "gpu")
    # every rank and every requeue (same or any job id) trains in the same directory
    for env in ({}, {"SLURM_JOB_ID": "123"}, {"SLURM_JOB_ID": "456", "SLURM_PROCID": "7"}):
        assert run_dir(to_container(cfg), env) == out
    assert f"#SBATCH --output={out.resolve() / 'slurm-%j.out'}" in lines


def test_cpu_job_and_a_named_run(tmp_path: Path):
    spec = JobSpec(nodes=1, gpus_per_node=0, cpu_tasks_per_node=2, mem="")
    script, out = sbatch_script("tiny", [f"run.root={tmp_path}", "run.name=ddp2"], spec)
    assert out == tmp_path / "ddp2"
    assert (
        "#SBATCH --ntasks-per-node=2" in script and "gres" not in script and "--mem" not in script
    )
    cfg = load_config("tiny", overrides=_srun_args(script)[6:])
    assert (cfg.trainer.devices, cfg.trainer.accelerator, cfg.run.name) == (2, "cpu", "ddp2")
    path = submit(script, out, dry_run=True)
    assert Path(path).read_text() == script and Path(path).parent == out
    assert "Backend: gloo" in script and "NCCL_SOCKET_IFNAME" in script


@pytest.mark.parametrize(
    ("env", "port"),
    [
        ({"SLURM_JOB_ID": "1234567"}, 19567),
        ({"SLURM_JOB_ID": "12"}, 15012),
        ({"SLURM_JOB_ID": "100042"}, 15042),
        ({"SLURM_JOB_ID": "77", "MASTER_PORT": "29500"}, 29500),
    ],
)
@pytest.mark.filterwarnings("ignore:The `srun` command is available")
def test_the_printed_rendezvous_is_lightnings(env, port, tmp_path: Path):
    from lightning.fabric.plugins.environments import SLURMEnvironment

    spec = JobSpec(nodes=2, gpus_per_node=0, cpu_tasks_per_node=1, mem="")
    script, _ = sbatch_script("tiny", [f"run.root={tmp_path}"], spec)
    lines = rendezvous_lines(spec)
    assert all(ln in script.splitlines() for ln in lines)
    # scontrol expands the node list as SLURM does; the stub answers for node-a,node-b
    stub = 'scontrol() { printf "node-a\\nnode-b\\n"; }'
    job = {"SLURM_JOB_NODELIST": "node-[a-b]", **env}
    shell = {"PATH": "/usr/bin:/bin", **job}
    run = subprocess.run(["bash", "-c", "\n".join([stub, *lines])], env=shell,
                         capture_output=True, text=True, check=True)  # fmt: skip
    monkey = {"SLURM_NODELIST": "node-a,node-b", **env}
    with pytest.MonkeyPatch.context() as mp:
        for k in ("MASTER_ADDR", "MASTER_PORT"):
            mp.delenv(k, raising=False)
        for k, v in monkey.items():
            mp.setenv(k, v)
        lightning = SLURMEnvironment()
        expected = f"{lightning.main_address}:{lightning.main_port}"
    assert expected == f"node-a:{port}"
    assert run.stdout.startswith(f"rendezvous: {expected} (gloo; job {env['SLURM_JOB_ID']} ")


def test_bad_override_fails_before_writing(tmp_path: Path):
    with pytest.raises(ConfigError, match="model.nope"):
        sbatch_script("paper", [f"run.root={tmp_path}", "model.nope=1"], JobSpec())
    assert not list(tmp_path.iterdir())


def test_cli_dry_run(tmp_path: Path, capsys: pytest.CaptureFixture):
    args = ["slurm", "submit", "--preset", "paper", "--nodes", "4", "--gpus-per-node", "8",
            "--dry-run", f"run.root={tmp_path}", INIT]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "#SBATCH --nodes=4" in out and "trainer.devices=8" in out and "not submitted" in out


def test_sweep_dry_run_writes_one_script_per_trial(tmp_path: Path):
    from lightning_hmd.experiments.sweep_run import run_sweep
    from lightning_hmd.experiments.sweeps import load_sweep

    sweep = load_sweep(Path(__file__).parents[2] / "sweeps" / "hallucinator.yaml")
    spec = JobSpec(nodes=2, gpus_per_node=4)
    said: list[str] = []
    runs = run_sweep(sweep, seeds=2, overrides=[f"run.root={tmp_path}", INIT], dry_run=True,
                     slurm=spec, echo=said.append)  # fmt: skip
    assert [r.status for r in runs] == ["planned"] * 4 and len(said) == 4
    for r in runs:
        script = (r.run_dir / "submit.sbatch").read_text()
        assert "#SBATCH --nodes=2" in script and "#SBATCH --gres=gpu:4" in script
        args = _srun_args(script)
        assert f"run.name={r.run_dir.name}" in args and f"seed={r.trial.seed}" in args
        assert all(f"{k}={v}".replace(" ", "") in [a.replace(" ", "") for a in args]
                   for k, v in r.trial.params.items())  # fmt: skip
        assert not (r.run_dir / "sweep.json").exists()  # nothing recorded for a dry run


@pytest.mark.parametrize("digest", ["5e12345678", "0012345678", "1234567890"])
def test_a_hash_that_reads_as_a_number_stays_the_run_name(digest, tmp_path: Path, monkeypatch):
    import lightning_hmd.experiments.slurm as slurm

    monkeypatch.setattr(slurm, "config_hash", lambda config: digest)
    spec = JobSpec(nodes=1, gpus_per_node=0, cpu_tasks_per_node=2, mem="")
    script, out = sbatch_script("tiny", [f"run.root={tmp_path}"], spec)
    assert out == tmp_path / digest
    cfg = load_config("tiny", overrides=_srun_args(script)[6:])
    assert cfg.run.name == digest  # not inf, not 12345678
