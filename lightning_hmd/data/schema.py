"""The shard schema: one module imported by every shard writer and by the reader.

A *clip sample* is one chunk of one person track (``T`` frames, up to the chunk length
chosen at preparation time). A *mocap sample* is one SMPL pose with its shape, for the
discriminator. Both are stored as WebDataset samples: tar members named ``<key>.<member>``
where the key holds no dots, so WebDataset groups all members of a sample by key.

Clip members (``T`` frames, ``K = 25`` keypoints in the HMMR order, ``D`` feature channels):

    ===================  ==============  =====================================================
    member               dtype / shape   content
    ===================  ==============  =====================================================
    ``meta.json``        JSON object     dataset, split, sequence, track_id, chunk, fps,
                                         num_frames, has_3d_joints, has_smpl, encoder_id,
                                         has_jpeg, schema_version
    ``kp2d.npy``         float32 (T,K,3) normalised crop coordinates ``x, y`` and visibility
    ``crop_box.npy``     float32 (T,4)   crop ``x0, y0, x1, y1`` in original image pixels
    ``crop_scale.npy``   float32 (T,)    scale applied to the original image before cropping
    ``frame_index.npy``  int32 (T,)      frame number in the original sequence, increasing
    ``phi.npy``          float16 (T,D)   optional features, made by ``meta.encoder_id``
    ``joints3d.npy``     float32 (T,14,3) optional LSP-14 joints in metres
    ``pose.npy``         float32 (T,72)  optional SMPL axis-angle pose (with ``betas.npy``)
    ``betas.npy``        float32 (10,)   optional SMPL shape, one per track
    ``f000000.jpg`` ...  JPEG bytes      optional per-frame crops, one member per frame,
                                         ``f`` + six-digit frame position in the chunk
    ===================  ==============  =====================================================

Per-frame JPEGs are separate members (not an array, not a pickle): each one is a plain
JPEG file, and the zero-padded positions keep them in frame order when sorted.

Mocap members: ``meta.json`` (dataset, schema_version), ``pose.npy`` float32 (72,),
``betas.npy`` float32 (10,).

Arrays are read with ``np.load(..., allow_pickle=False)`` and metadata with ``json`` only;
nothing is ever unpickled. Every decoder validates shapes, dtypes and finite values and
raises :class:`SchemaError` naming the member, the expected and the actual value.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from lightning_hmd.body.joints import NUM_BETAS, NUM_KEYPOINTS, NUM_LSP_JOINTS, POSE_DIM

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
MAX_FRAMES = 10**6  # frame members carry six digits
JPEG_MAGIC = b"\xff\xd8\xff"

KINDS = ("clip", "mocap")

_DATASET_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]|_(?!_))*[a-z0-9]$|^[a-z0-9]$")
_KEY_CHAR_RE = re.compile(r"[^A-Za-z0-9_-]")
_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
MAX_KEY_LENGTH = 200


class SchemaError(ValueError):
    """A sample, a member or a key does not follow the shard schema."""


@dataclass
class ClipSample:
    """One chunk of one person track: ``T`` frames, ``K = 25`` keypoints.

    Attributes:
        dataset: dataset name, lower-case (``penn-action``, ``h36m``, ``synthetic``...).
        split: ``train``, ``val`` or ``test`` (any non-empty name).
        sequence: sequence (video) name in the original dataset.
        track_id: person track id within the sequence, >= 0.
        fps: frame rate of the frames in this chunk, > 0.
        kp2d: (T, 25, 3) float32 normalised crop coordinates ``x, y`` and visibility in [0, 1].
        crop_box: (T, 4) float32 crop ``x0, y0, x1, y1`` in original image pixels,
            x1 > x0 and y1 > y0.
        crop_scale: (T,) float32 image scale applied before cropping, > 0.
        frame_index: (T,) int32 frame numbers in the original sequence, >= 0, increasing.
        chunk: position of this chunk within the track, >= 0.
        phi: optional (T, D) float16 features made by the encoder ``encoder_id``.
        encoder_id: id of the encoder that made ``phi``; set exactly when ``phi`` is.
        jpeg: optional list of T JPEG-encoded crops.
        joints3d: optional (T, 14, 3) float32 LSP-14 joints in metres.
        pose: optional (T, 72) float32 SMPL axis-angle pose; set exactly when ``betas`` is.
        betas: optional (10,) float32 SMPL shape.
        schema_version: the schema version the sample was written with.
    """

    dataset: str
    split: str
    sequence: str
    track_id: int
    fps: float
    kp2d: np.ndarray
    crop_box: np.ndarray
    crop_scale: np.ndarray
    frame_index: np.ndarray
    chunk: int = 0
    phi: np.ndarray | None = None
    encoder_id: str | None = None
    jpeg: list[bytes] | None = None
    joints3d: np.ndarray | None = None
    pose: np.ndarray | None = None
    betas: np.ndarray | None = None
    schema_version: int = SCHEMA_VERSION

    @property
    def num_frames(self) -> int:
        """T, the number of frames."""
        return int(np.shape(self.kp2d)[0]) if np.ndim(self.kp2d) else 0

    @property
    def has_3d_joints(self) -> bool:
        return self.joints3d is not None

    @property
    def has_smpl(self) -> bool:
        return self.pose is not None


@dataclass
class MocapSample:
    """One mocap pose for the discriminator.

    Attributes:
        pose: (72,) float32 SMPL axis-angle pose.
        betas: (10,) float32 SMPL shape.
        dataset: mocap source name, lower-case (``cmu``, ``h36m``, ``jointlim``, ``amass``...).
        schema_version: the schema version the sample was written with.
    """

    pose: np.ndarray
    betas: np.ndarray
    dataset: str = "mocap"
    schema_version: int = SCHEMA_VERSION


# --------------------------------------------------------------------------- keys


def _check_dataset_name(dataset: str) -> None:
    if not isinstance(dataset, str) or not _DATASET_RE.match(dataset):
        raise SchemaError(
            f"dataset name {dataset!r} must be lower-case letters, digits, '-' and single '_', "
            "starting and ending with a letter or digit"
        )


def _sanitise(part: str, what: str) -> str:
    """Map ``part`` to ``[A-Za-z0-9_-]+``; a changed string gets a hash of the original."""
    if not isinstance(part, str) or not part:
        raise SchemaError(f"{what} must be a non-empty string, got {part!r}")
    clean = _KEY_CHAR_RE.sub("-", part)
    if clean != part:
        digest = hashlib.sha1(part.encode("utf-8")).hexdigest()[:8]
        clean = f"{clean}-{digest}"
    return clean


def _check_index(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise SchemaError(f"{what} must be a non-negative integer, got {value!r}")
    return int(value)


def make_key(dataset: str, sequence: str, track_id: int, chunk: int) -> str:
    """The sample key ``<dataset>__<sequence>__t<track>_c<chunk>``, without dots.

    ``dataset`` must already be a clean name (no ``__``); ``sequence`` is sanitised to
    ``[A-Za-z0-9_-]`` and, when that changes it, suffixed with a hash of the original so
    two different sequences never share a key. Raises :class:`SchemaError` on an empty
    or malformed part, or a key longer than ``MAX_KEY_LENGTH``.
    """
    _check_dataset_name(dataset)
    seq = _sanitise(sequence, "sequence")
    track = _check_index(track_id, "track_id")
    chunk_i = _check_index(chunk, "chunk")
    key = f"{dataset}__{seq}__t{track:04d}_c{chunk_i:04d}"
    return check_key(key)


def make_mocap_key(dataset: str, index: int) -> str:
    """The mocap sample key ``<dataset>__m<index>``, without dots."""
    _check_dataset_name(dataset)
    return check_key(f"{dataset}__m{_check_index(index, 'index'):09d}")


def check_key(key: str) -> str:
    """Return ``key`` if it is a valid sample key (no dots, no '/', no leading '_')."""
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise SchemaError(
            f"sample key {key!r} must match [A-Za-z0-9][A-Za-z0-9_-]* (no dots, no '/')"
        )
    if len(key) > MAX_KEY_LENGTH:
        raise SchemaError(f"sample key {key!r} is longer than {MAX_KEY_LENGTH} characters")
    return key


def split_member_name(name: str) -> tuple[str, str]:
    """Split a tar member name into ``(key, member)`` at the first dot, as WebDataset does."""
    if "." not in name:
        raise SchemaError(f"tar member {name!r} has no '.<member>' suffix")
    key, member = name.split(".", 1)
    return key, member


def frame_member(i: int) -> str:
    """Member name of the JPEG crop of frame ``i`` of a chunk: ``f000000.jpg``."""
    return f"f{i:06d}.jpg"


def is_known_member(member: str, kind: str = "clip") -> bool:
    """Whether ``member`` (the part after the key) is a member the schema defines."""
    if kind == "mocap":
        return member in MOCAP_MEMBERS
    return member in CLIP_MEMBERS or FRAME_MEMBER_RE.match(member) is not None


# --------------------------------------------------------------------------- arrays


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def _load_npy(member: str, data: bytes) -> np.ndarray:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise SchemaError(f"{member}: expected bytes, got {type(data).__name__}")
    try:
        return np.load(io.BytesIO(bytes(data)), allow_pickle=False)
    except Exception as err:  # any parse failure of a hostile or truncated member
        raise SchemaError(f"{member}: not a readable numpy array without pickle ({err})") from err


def _fmt_shape(shape: tuple) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _check_array(
    member: str, array: object, dtype: np.dtype | type, shape: tuple[int | str | None, ...]
) -> np.ndarray:
    """Check dtype, shape (``None`` = any size >= 1) and finite values of one array."""
    if not isinstance(array, np.ndarray):
        raise SchemaError(f"{member}: expected a numpy array, got {type(array).__name__}")
    want = np.dtype(dtype)
    if array.dtype != want:
        raise SchemaError(f"{member}: expected dtype {want}, got {array.dtype}")
    ok = array.ndim == len(shape) and all(
        (s is None and a >= 1) or a == s for a, s in zip(array.shape, shape, strict=False)
    )
    if not ok:
        expected = _fmt_shape(tuple("*" if s is None else s for s in shape))
        raise SchemaError(
            f"{member}: expected shape {expected}, got {_fmt_shape(tuple(array.shape))}"
        )
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = int(np.size(array) - np.isfinite(array).sum())
        raise SchemaError(f"{member}: {bad} non-finite value(s) (NaN or inf)")
    return array


# --------------------------------------------------------------------------- clips


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


def _clip_meta(sample: ClipSample) -> dict:
    return {
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
        "schema_version",
    )
)


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
    return sample


def encode_mocap(sample: MocapSample, key: str) -> dict[str, str | bytes]:
    """Validate and encode one mocap sample as WebDataset members."""
    check_key(key)
    validate_mocap(sample)
    meta = {"dataset": sample.dataset, "schema_version": sample.schema_version}
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
    extra = sorted(set(meta) - {"dataset", "schema_version"})
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
    )
    return validate_mocap(sample)


def num_frames_of(sample: ClipSample | MocapSample) -> int:
    """Frames a sample contributes to a manifest's count (1 for a mocap sample)."""
    return sample.num_frames if isinstance(sample, ClipSample) else 1
