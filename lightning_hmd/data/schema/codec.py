"""Validate, encode and decode clip and mocap samples (members as bytes, nothing unpickled)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

import numpy as np

from lightning_hmd.body.joints import NUM_BETAS, NUM_KEYPOINTS, NUM_LSP_JOINTS, POSE_DIM
from lightning_hmd.data.schema.arrays import _check_array, _load_npy, _npy_bytes
from lightning_hmd.data.schema.keys import (
    _check_dataset_name,
    _check_index,
    check_key,
    frame_member,
    is_known_member,
)
from lightning_hmd.data.schema.members import (
    BETAS,
    CLIP_ARRAY_MEMBERS,
    CROP_BOX,
    CROP_SCALE,
    FRAME_INDEX,
    FRAME_MEMBER_RE,
    JOINTS3D,
    JPEG_MAGIC,
    KP2D,
    MAX_FEATURE_SETS,
    MAX_FRAMES,
    META,
    MORE_PHI_RE,
    PHI,
    POSE,
    SCHEMA_VERSION,
    SchemaError,
    more_phi_member,
)
from lightning_hmd.data.schema.samples import ClipSample, MocapSample


def validate_clip(sample: ClipSample) -> ClipSample:
    """Check every field of ``sample``; raise :class:`SchemaError` naming the member."""
    _check_dataset_name(sample.dataset)
    for what in ("split", "sequence"):
        value = getattr(sample, what)
        if not isinstance(value, str) or not value:
            raise SchemaError(f"{META}: {what} must be a non-empty string, got {value!r}")
    _check_index(sample.track_id, f"{META}: track_id")
    _check_index(sample.chunk, f"{META}: chunk")
    if (
        isinstance(sample.fps, bool)
        or not isinstance(sample.fps, int | float)
        or not math.isfinite(sample.fps)
        or sample.fps <= 0
    ):
        raise SchemaError(f"{META}: fps must be a finite number > 0, got {sample.fps!r}")
    if sample.schema_version != SCHEMA_VERSION:
        raise SchemaError(
            f"{META}: schema_version expected {SCHEMA_VERSION}, got {sample.schema_version!r}"
        )

    kp2d = _check_array(KP2D, sample.kp2d, np.float32, (None, NUM_KEYPOINTS, 3))
    T = kp2d.shape[0]
    if T > MAX_FRAMES:
        raise SchemaError(f"{KP2D}: at most {MAX_FRAMES} frames per sample, got {T}")
    vis = kp2d[..., 2]
    if ((vis < 0) | (vis > 1)).any():
        raise SchemaError(f"{KP2D}: visibility (last column) must lie in [0, 1]")
    box = _check_array(CROP_BOX, sample.crop_box, np.float32, (T, 4))
    if not ((box[:, 2] > box[:, 0]) & (box[:, 3] > box[:, 1])).all():
        raise SchemaError(f"{CROP_BOX}: every box needs x1 > x0 and y1 > y0")
    scale = _check_array(CROP_SCALE, sample.crop_scale, np.float32, (T,))
    if not (scale > 0).all():
        raise SchemaError(f"{CROP_SCALE}: every scale must be > 0")
    index = _check_array(FRAME_INDEX, sample.frame_index, np.int32, (T,))
    if (index < 0).any() or (np.diff(index) <= 0).any():
        raise SchemaError(f"{FRAME_INDEX}: frame numbers must be >= 0 and strictly increasing")

    if (sample.phi is None) != (sample.encoder_id is None):
        raise SchemaError(f"{PHI}: phi and meta encoder_id must be given together")
    if sample.phi is not None:
        _check_array(PHI, sample.phi, np.float16, (T, None))
        if not isinstance(sample.encoder_id, str) or not sample.encoder_id:
            raise SchemaError(f"{META}: encoder_id must be a non-empty string")
    _check_more_phi(sample, T)
    if sample.joints3d is not None:
        _check_array(JOINTS3D, sample.joints3d, np.float32, (T, NUM_LSP_JOINTS, 3))
    if (sample.pose is None) != (sample.betas is None):
        raise SchemaError(f"{POSE}: pose and {BETAS} must be given together (has_smpl)")
    if sample.pose is not None:
        _check_array(POSE, sample.pose, np.float32, (T, POSE_DIM))
        _check_array(BETAS, sample.betas, np.float32, (NUM_BETAS,))
    if sample.jpeg is not None:
        if not isinstance(sample.jpeg, list) or len(sample.jpeg) != T:
            got = len(sample.jpeg) if isinstance(sample.jpeg, list) else type(sample.jpeg).__name__
            raise SchemaError(f"{frame_member(0)}: expected {T} JPEG frames, got {got}")
        for i, data in enumerate(sample.jpeg):
            if not isinstance(data, bytes) or not data.startswith(JPEG_MAGIC):
                raise SchemaError(f"{frame_member(i)}: not JPEG data (no FF D8 FF start marker)")
    return sample


def _check_more_phi(sample: ClipSample, T: int) -> None:
    """The extra feature sets: a dict of distinct non-empty ids (none the primary's) to
    (T, D_k) float16 finite arrays, only beside a primary set."""
    more = sample.more_phi
    if not isinstance(more, dict):
        raise SchemaError(f"{META}: more_encoder_ids: more_phi must be a dict, got "
                          f"{type(more).__name__}")  # fmt: skip
    if not more:
        return
    if sample.phi is None:
        raise SchemaError(
            f"{more_phi_member(1)}: extra feature sets need the primary one ({PHI} and "
            "meta encoder_id)"
        )
    if len(more) > MAX_FEATURE_SETS:
        raise SchemaError(f"{META}: at most {MAX_FEATURE_SETS} extra feature sets, got {len(more)}")
    for i, (encoder_id, array) in enumerate(more.items(), start=1):
        member = more_phi_member(i)
        if not isinstance(encoder_id, str) or not encoder_id:
            raise SchemaError(f"{member}: its encoder id must be a non-empty string, got "
                              f"{encoder_id!r}")  # fmt: skip
        if encoder_id == sample.encoder_id:
            raise SchemaError(
                f"{member}: encoder id {encoder_id!r} is the primary set's ({PHI}) as well"
            )
        _check_array(member, array, np.float16, (T, None))


def _clip_meta(sample: ClipSample) -> dict:
    more = {"more_encoder_ids": list(sample.more_phi)} if sample.more_phi else {}
    return more | {
        "dataset": sample.dataset,
        "split": sample.split,
        "sequence": sample.sequence,
        "track_id": int(sample.track_id),
        "chunk": int(sample.chunk),
        "fps": float(sample.fps),
        "num_frames": sample.num_frames,
        "has_3d_joints": sample.has_3d_joints,
        "has_smpl": sample.has_smpl,
        "has_jpeg": sample.jpeg is not None,
        "encoder_id": sample.encoder_id,
        "schema_version": sample.schema_version,
    }


def _json_bytes(obj: dict) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")


def encode_clip(sample: ClipSample, key: str) -> dict[str, str | bytes]:
    """Validate ``sample`` and encode it as WebDataset members.

    Returns ``{"__key__": key, "<member>": bytes, ...}`` with the members listed in the
    module docstring; equal samples give equal bytes.
    """
    check_key(key)
    validate_clip(sample)
    members: dict[str, str | bytes] = {"__key__": key, META: _json_bytes(_clip_meta(sample))}
    arrays = {
        KP2D: sample.kp2d,
        CROP_BOX: sample.crop_box,
        CROP_SCALE: sample.crop_scale,
        FRAME_INDEX: sample.frame_index,
        PHI: sample.phi,
        JOINTS3D: sample.joints3d,
        POSE: sample.pose,
        BETAS: sample.betas,
    }
    for name, array in arrays.items():
        if array is not None:
            members[name] = _npy_bytes(array)
    for i, array in enumerate(sample.more_phi.values(), start=1):
        members[more_phi_member(i)] = _npy_bytes(array)
    for i, data in enumerate(sample.jpeg or []):
        members[frame_member(i)] = bytes(data)
    return members


def _load_meta(members: Mapping[str, object]) -> dict:
    if META not in members:
        raise SchemaError(f"missing member {META}")
    data = members[META]
    if not isinstance(data, bytes | bytearray):
        raise SchemaError(f"{META}: expected bytes, got {type(data).__name__}")
    try:
        meta = json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SchemaError(f"{META}: not valid JSON ({err})") from err
    if not isinstance(meta, dict):
        raise SchemaError(f"{META}: expected a JSON object, got {type(meta).__name__}")
    return meta


def _payload(members: Mapping[str, object], kind: str) -> dict[str, object]:
    """Members without WebDataset's ``__key__``/``__url__`` entries; unknown members raise."""
    out = {}
    for name, data in members.items():
        if name.startswith("__"):
            continue
        if not is_known_member(name, kind):
            raise SchemaError(f"unknown member {name!r} in a {kind} sample (not in the schema)")
        out[name] = data
    return out


def _meta_field(meta: dict, name: str, types: type | tuple[type, ...]) -> object:
    if name not in meta:
        raise SchemaError(f"{META}: missing field {name!r}")
    value = meta[name]
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise SchemaError(f"{META}: field {name!r} has type bool")
    if not isinstance(value, types):
        raise SchemaError(f"{META}: field {name!r} has type {type(value).__name__}")
    return value


_CLIP_META_FIELDS = frozenset(
    (
        "dataset",
        "split",
        "sequence",
        "track_id",
        "chunk",
        "fps",
        "num_frames",
        "has_3d_joints",
        "has_smpl",
        "has_jpeg",
        "encoder_id",
        "more_encoder_ids",
        "schema_version",
    )
)


def _more_phi(meta: dict, payload: dict[str, object]) -> dict[str, np.ndarray]:
    """The extra feature sets: ``meta.more_encoder_ids`` (optional) names the members
    ``phi_1.npy``.. in order; a member it does not list, or one it lists and that is
    missing, raises."""
    ids = meta.get("more_encoder_ids", [])
    if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
        raise SchemaError(f"{META}: more_encoder_ids must be a list of non-empty strings")
    if len(set(ids)) != len(ids):
        raise SchemaError(f"{META}: more_encoder_ids lists an encoder id twice: {ids}")
    listed = {more_phi_member(i) for i in range(1, len(ids) + 1)}
    stray = sorted(n for n in payload if MORE_PHI_RE.match(n) and n not in listed)
    if stray:
        raise SchemaError(
            f"{stray[0]}: a feature set member that meta more_encoder_ids ({len(ids)} "
            "id(s)) does not list"
        )
    out = {}
    for i, encoder_id in enumerate(ids, start=1):
        member = more_phi_member(i)
        if member not in payload:
            raise SchemaError(f"missing member {member} (meta more_encoder_ids[{i - 1}] "
                              f"{encoder_id!r})")  # fmt: skip
        out[encoder_id] = _load_npy(member, payload[member])
    return out


def decode_clip(members: Mapping[str, object]) -> ClipSample:
    """Decode and validate one clip sample from ``{member: bytes}`` (WebDataset's raw sample).

    Raises :class:`SchemaError` naming the member on an unknown or missing member, a wrong
    dtype or shape, a non-finite value or metadata that disagrees with the arrays.
    """
    payload = _payload(members, "clip")
    meta = _load_meta(payload)
    version = _meta_field(meta, "schema_version", int)
    if version != SCHEMA_VERSION:
        raise SchemaError(f"{META}: schema_version expected {SCHEMA_VERSION}, got {version}")
    extra = sorted(set(meta) - _CLIP_META_FIELDS)
    if extra:
        raise SchemaError(f"{META}: unknown field(s) {extra}")
    for name in (KP2D, CROP_BOX, CROP_SCALE, FRAME_INDEX):
        if name not in payload:
            raise SchemaError(f"missing member {name}")
    arrays = {
        name: _load_npy(name, payload[name]) for name in CLIP_ARRAY_MEMBERS if name in payload
    }
    frames = sorted(n for n in payload if FRAME_MEMBER_RE.match(n))
    jpeg = [payload[n] for n in frames] if frames else None
    encoder_id = _meta_field(meta, "encoder_id", (str, type(None)))
    sample = ClipSample(
        dataset=_meta_field(meta, "dataset", str),
        split=_meta_field(meta, "split", str),
        sequence=_meta_field(meta, "sequence", str),
        track_id=_meta_field(meta, "track_id", int),
        chunk=_meta_field(meta, "chunk", int),
        fps=_meta_field(meta, "fps", (int, float)),
        kp2d=arrays[KP2D],
        crop_box=arrays[CROP_BOX],
        crop_scale=arrays[CROP_SCALE],
        frame_index=arrays[FRAME_INDEX],
        phi=arrays.get(PHI),
        encoder_id=encoder_id,
        jpeg=jpeg,
        joints3d=arrays.get(JOINTS3D),
        pose=arrays.get(POSE),
        betas=arrays.get(BETAS),
        schema_version=version,
        more_phi=_more_phi(meta, payload),
    )
    if frames and frames != [frame_member(i) for i in range(len(frames))]:
        raise SchemaError(f"JPEG frame members must be f000000.jpg .. in sequence, got {frames}")
    validate_clip(sample)
    T = sample.num_frames
    checks = {
        "num_frames": (_meta_field(meta, "num_frames", int), T),
        "has_3d_joints": (_meta_field(meta, "has_3d_joints", bool), sample.has_3d_joints),
        "has_smpl": (_meta_field(meta, "has_smpl", bool), sample.has_smpl),
        "has_jpeg": (_meta_field(meta, "has_jpeg", bool), jpeg is not None),
    }
    for name, (claimed, actual) in checks.items():
        if claimed != actual:
            raise SchemaError(f"{META}: {name} is {claimed!r} but the members give {actual!r}")
    return sample


# --------------------------------------------------------------------------- mocap


def validate_mocap(sample: MocapSample) -> MocapSample:
    """Check a mocap sample; raise :class:`SchemaError` naming the member."""
    _check_dataset_name(sample.dataset)
    if sample.schema_version != SCHEMA_VERSION:
        raise SchemaError(
            f"{META}: schema_version expected {SCHEMA_VERSION}, got {sample.schema_version!r}"
        )
    _check_array(POSE, sample.pose, np.float32, (POSE_DIM,))
    _check_array(BETAS, sample.betas, np.float32, (NUM_BETAS,))
    if not isinstance(sample.sequence, str):
        raise SchemaError(f"{META}: sequence must be a string, got {sample.sequence!r}")
    if isinstance(sample.frame, bool) or not isinstance(sample.frame, int) or sample.frame < -1:
        raise SchemaError(f"{META}: frame must be an int >= -1, got {sample.frame!r}")
    if bool(sample.sequence) != (sample.frame >= 0):
        raise SchemaError(
            f"{META}: sequence and frame are given together (got sequence "
            f"{sample.sequence!r}, frame {sample.frame})"
        )
    return sample


def encode_mocap(sample: MocapSample, key: str) -> dict[str, str | bytes]:
    """Validate and encode one mocap sample as WebDataset members."""
    check_key(key)
    validate_mocap(sample)
    meta = {"dataset": sample.dataset, "schema_version": sample.schema_version}
    if sample.sequence:  # poses of unknown order are written as before
        meta |= {"sequence": sample.sequence, "frame": sample.frame}
    return {
        "__key__": key,
        META: _json_bytes(meta),
        POSE: _npy_bytes(sample.pose),
        BETAS: _npy_bytes(sample.betas),
    }


def decode_mocap(members: Mapping[str, object]) -> MocapSample:
    """Decode and validate one mocap sample from ``{member: bytes}``."""
    payload = _payload(members, "mocap")
    meta = _load_meta(payload)
    version = _meta_field(meta, "schema_version", int)
    if version != SCHEMA_VERSION:
        raise SchemaError(f"{META}: schema_version expected {SCHEMA_VERSION}, got {version}")
    extra = sorted(set(meta) - {"dataset", "schema_version", "sequence", "frame"})
    if extra:
        raise SchemaError(f"{META}: unknown field(s) {extra}")
    for name in (POSE, BETAS):
        if name not in payload:
            raise SchemaError(f"missing member {name}")
    sample = MocapSample(
        pose=_load_npy(POSE, payload[POSE]),
        betas=_load_npy(BETAS, payload[BETAS]),
        dataset=_meta_field(meta, "dataset", str),
        schema_version=version,
        sequence=_meta_field(meta, "sequence", str) if "sequence" in meta else "",
        frame=_meta_field(meta, "frame", int) if "frame" in meta else -1,
    )
    return validate_mocap(sample)


def num_frames_of(sample: ClipSample | MocapSample) -> int:
    """Frames a sample contributes to a manifest's count (1 for a mocap sample)."""
    return sample.num_frames if isinstance(sample, ClipSample) else 1
