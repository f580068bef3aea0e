"""Initialisation from a converted HMR checkpoint (HMMR's ``use_hmr_ief_init``,
``src/config.py``).

HMMR (the restore in ``HMRSequenceTrainer.__init__``, ``src/trainer_sequence_fc.py``) starts
``mean_param`` and the current-frame regressor f_3D from a trained single-image HMR model; the
temporal encoder, the hallucinator and the Δt heads start random. An *HMR init file* holds
those weights in this package's names, written with :func:`save_hmr_init` (by a converter
from HMR's TensorFlow checkpoint, or from a lightning_hmd generator)::

    {"format": "lightning_hmd/hmr-init/1", "source": "...",
     "state_dict": {"smpl_head.theta_mean": (85,),
                    "smpl_head.ief.fc1.weight": (H, D + 85), ... ,
                    "image_encoder.backbone.<...>": ...}}   # the encoder is optional

It contains tensors and plain containers only, so it loads with ``weights_only=True``. A
lightning_hmd checkpoint serves as well (its ``generator.*`` weights), e.g. the one
``lightning-hmd import-tf --hmr`` writes from HMR's released TensorFlow checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from lightning_hmd.errors import CheckpointError

FORMAT = "lightning_hmd/hmr-init/1"
GENERATOR_PREFIX = "generator."  # the generator's weights in a lightning_hmd checkpoint
PART_PREFIXES = {
    "mean": ("smpl_head.theta_mean",),
    "f3d": ("smpl_head.ief.",),
    "encoder": ("image_encoder.",),
}
PARTS = tuple(PART_PREFIXES)


class HMRInitError(CheckpointError):
    """The HMR init file is unreadable, of another format, or does not fit the model."""


def _in_part(key: str, part: str) -> bool:
    return any(key == p or (p.endswith(".") and key.startswith(p)) for p in PART_PREFIXES[part])


def save_hmr_init(
    generator: nn.Module, path: str | Path, source: str, parts: Sequence[str] = PARTS
) -> Path:
    """Write the ``parts`` of ``generator``'s weights as an HMR init file (atomically)."""
    state = {
        k: v.detach().cpu().clone()
        for k, v in generator.state_dict().items()
        if any(_in_part(k, p) for p in parts)
    }
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    torch.save({"format": FORMAT, "source": source, "state_dict": state}, tmp)
    tmp.replace(path)
    return path


def read_hmr_init(path: str | Path) -> dict[str, torch.Tensor]:
    """The generator state dict stored in an HMR init file or a lightning_hmd checkpoint.

    Raises:
        HMRInitError: the file is missing, unreadable or of another format.
    """
    path = Path(path)
    if not path.is_file():
        raise HMRInitError(f"model.init_checkpoint: {path} does not exist")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any unreadable file gets the same clear error
        raise HMRInitError(f"{path}: not a readable HMR init file ({err})") from None
    state = blob.get("state_dict") if isinstance(blob, dict) else None
    if isinstance(blob, dict) and "format" not in blob and isinstance(state, dict):
        gen = {
            k[len(GENERATOR_PREFIX) :]: v
            for k, v in state.items()
            if k.startswith(GENERATOR_PREFIX)
        }
        if gen:
            return gen
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        got = blob.get("format") if isinstance(blob, dict) else type(blob).__name__
        raise HMRInitError(
            f"{path}: format {got!r}, expected {FORMAT!r} or a lightning_hmd checkpoint"
        )
    return blob["state_dict"]


def encoder_state(blob: object, path: str | Path) -> dict[str, torch.Tensor] | None:
    """The image encoder's state dict (keys without the ``image_encoder.`` prefix) when
    ``blob``, loaded from ``path``, is an HMR init file; None when it is something else (e.g.
    a bare encoder state dict).

    Raises:
        HMRInitError: an HMR init file without the encoder.
    """
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        return None
    (prefix,) = PART_PREFIXES["encoder"]
    state = {k[len(prefix) :]: v for k, v in blob["state_dict"].items() if k.startswith(prefix)}
    if not state:
        raise HMRInitError(f"{path}: holds no image encoder (save it with parts incl. 'encoder')")
    return state


def load_hmr_init(generator: nn.Module, path: str | Path, parts: Sequence[str]) -> list[str]:
    """Copy the ``parts`` (``mean``, ``f3d``, ``encoder``) of an HMR init file into
    ``generator``; returns the keys loaded.

    Raises:
        HMRInitError: the file is missing or not an HMR init file, a requested part is absent
            from it or from the model, or a tensor's shape differs (names the key and shapes).
    """
    path = Path(path)
    unknown = [p for p in parts if p not in PART_PREFIXES]
    if unknown:
        raise HMRInitError(f"model.init_parts: unknown part(s) {unknown}; choose from {PARTS}")
    stored = read_hmr_init(path)
    own = generator.state_dict()
    loaded: dict[str, torch.Tensor] = {}
    for part in parts:
        model_keys = [k for k in own if _in_part(k, part)]
        if not model_keys:
            raise HMRInitError(f"model.init_parts: the model has no {part!r} weights to load")
        missing = [k for k in model_keys if k not in stored]
        if missing:
            raise HMRInitError(f"{path}: part {part!r} lacks {missing[:5]}")
        for k in model_keys:
            if stored[k].shape != own[k].shape:
                raise HMRInitError(
                    f"{path}: {k} has shape {tuple(stored[k].shape)}, the model expects "
                    f"{tuple(own[k].shape)} (check model.feat_dim / regressor_hidden)"
                )
            loaded[k] = stored[k]
    generator.load_state_dict(loaded, strict=False)
    return sorted(loaded)
