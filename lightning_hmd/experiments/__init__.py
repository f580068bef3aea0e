"""Experiment tooling around the core: sweeps (W&B sweep files, their trials run locally or
as SLURM jobs), SLURM submission, comparing runs, W&B offline logs read without a server,
the quickstart and the smoke check."""
