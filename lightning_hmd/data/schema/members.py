"""Member names, kinds, the schema version and the error type of the shard schema."""

from __future__ import annotations

import re

from lightning_hmd.errors import DataError

SCHEMA_VERSION = 1

META = "meta.json"
KP2D = "kp2d.npy"
CROP_BOX = "crop_box.npy"
CROP_SCALE = "crop_scale.npy"
FRAME_INDEX = "frame_index.npy"
PHI = "phi.npy"
JOINTS3D = "joints3d.npy"
POSE = "pose.npy"
BETAS = "betas.npy"

CLIP_ARRAY_MEMBERS: tuple[str, ...] = (
    KP2D,
    CROP_BOX,
    CROP_SCALE,
    FRAME_INDEX,
    PHI,
    JOINTS3D,
    POSE,
    BETAS,
)
CLIP_MEMBERS: frozenset[str] = frozenset((META, *CLIP_ARRAY_MEMBERS))
MOCAP_MEMBERS: frozenset[str] = frozenset((META, POSE, BETAS))

FRAME_MEMBER_RE = re.compile(r"^f(\d{6})\.jpg$")
# Further feature sets of a clip: ``phi_1.npy``, ``phi_2.npy``... in the order of
# ``meta.more_encoder_ids`` (``phi.npy`` is the primary set, made by ``meta.encoder_id``).
MORE_PHI_RE = re.compile(r"^phi_([1-9]\d{0,2})\.npy$")
MAX_FEATURE_SETS = 999  # extra sets per clip: members phi_1.npy .. phi_999.npy
MAX_FRAMES = 10**6  # frame members carry six digits
JPEG_MAGIC = b"\xff\xd8\xff"

KINDS = ("clip", "mocap")

_DATASET_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]|_(?!_))*[a-z0-9]$|^[a-z0-9]$")
_KEY_CHAR_RE = re.compile(r"[^A-Za-z0-9_-]")
_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
MAX_KEY_LENGTH = 200


def more_phi_member(i: int) -> str:
    """Member name of a clip's ``i``-th extra feature set (``i`` >= 1): ``phi_<i>.npy``."""
    return f"phi_{i}.npy"


class SchemaError(DataError):
    """A sample, a member or a key does not follow the shard schema."""


# Largest member sizes a reader accepts (larger members are skipped unread). Arrays: a
# generous npy header plus a row per frame of up to 4096 float64 values (phi of a ResNet-50
# is 2048 float16); JPEG crops: one frame of at most 1024 x 1024 stored uncompressed.
MAX_NPY_HEADER_BYTES = 4096
MAX_ARRAY_ROW_BYTES = 4096 * 8
MAX_JPEG_BYTES = 1024 * 1024 * 3
MAX_META_BYTES = 64 * 1024


def member_limit(member: str, frames: int) -> int:
    """The largest size in bytes the schema allows for ``member`` of a sample of ``frames``
    frames (mocap samples: one frame)."""
    if member == META:
        return MAX_META_BYTES
    if FRAME_MEMBER_RE.match(member):
        return MAX_JPEG_BYTES
    return MAX_NPY_HEADER_BYTES + max(1, frames) * MAX_ARRAY_ROW_BYTES
