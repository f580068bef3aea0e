"""The project's own errors: what a user gave (a config, a path, data, a checkpoint, the
state of a run) is wrong, and the message says what and where.

``lightning-hmd`` prints these as one line and exits with status 2; any other exception is a
bug and shows its traceback. Each class also derives from the builtin exception it stands
for (``ValueError``, ``FileNotFoundError``, ``RuntimeError``), so callers that catch those
keep working.
"""

from __future__ import annotations


class LightningHMDError(Exception):
    """Base of the errors the command line reports as one line."""


class ConfigError(LightningHMDError, ValueError):
    """A config key or a command-line argument is invalid; the message names it."""


class MissingPathError(LightningHMDError, FileNotFoundError):
    """A path the config or the command line gives does not exist; the message names it."""


class DataError(LightningHMDError, ValueError):
    """Input data (shards, manifests, datasets, predictions, tracks, images) is unusable."""


class CheckpointError(LightningHMDError, ValueError):
    """A checkpoint or weights file is unreadable, hostile or of another model."""


class RunError(LightningHMDError, RuntimeError):
    """A run cannot go on: its directory is held, its config changed, its losses or its
    data went bad, or a job could not be submitted."""
