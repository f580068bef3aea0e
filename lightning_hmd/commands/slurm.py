"""``lightning-hmd slurm submit``: an sbatch script in the run directory, submitted."""

from __future__ import annotations

import argparse

from lightning_hmd.commands.args import add_config_args, add_job_args, command_group, job_spec


def run_submit(ns: argparse.Namespace) -> int:
    from lightning_hmd.experiments.slurm import sbatch_script, submit

    script, out = sbatch_script(ns.preset, ns.overrides, job_spec(ns))
    result = submit(script, out, dry_run=ns.dry_run)
    if ns.dry_run:
        print(script, end="")
        print(f"# written to {result} (not submitted)")
    else:
        print(f"submitted job {result}: {out / 'submit.sbatch'}; log {out}/slurm-{result}.out")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    slurm = command_group(sub, "slurm", "SLURM jobs")
    p = slurm.add_parser(
        "submit",
        help="write an sbatch script into the run directory and submit it",
        description="Nodes and GPUs per node set both the job and the Trainer (num_nodes, "
        "devices); the job checkpoints and requeues itself on SIGUSR1 90 s before its limit.",
    )
    add_config_args(p, files=False)
    add_job_args(p)
    p.add_argument("--dry-run", action="store_true", help="write and print the script only")
    p.set_defaults(func=run_submit)
