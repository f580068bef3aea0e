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
                                         has_jpeg, schema_version; more_encoder_ids
                                         (only with extra feature sets)
    ``kp2d.npy``         float32 (T,K,3) normalised crop coordinates ``x, y`` and visibility
    ``crop_box.npy``     float32 (T,4)   crop ``x0, y0, x1, y1`` in original image pixels
    ``crop_scale.npy``   float32 (T,)    scale applied to the original image before cropping
    ``frame_index.npy``  int32 (T,)      frame number in the original sequence, increasing
    ``phi.npy``          float16 (T,D)   optional features, made by ``meta.encoder_id``
    ``phi_1.npy`` ...    float16 (T,D_k) optional further feature sets (only with
                                         ``phi.npy``): ``phi_<k>.npy`` made by
                                         ``meta.more_encoder_ids[k - 1]``, k = 1, 2, ...
    ``joints3d.npy``     float32 (T,14,3) optional LSP-14 joints in metres
    ``pose.npy``         float32 (T,72)  optional SMPL axis-angle pose (with ``betas.npy``)
    ``betas.npy``        float32 (10,)   optional SMPL shape, one per track
    ``f000000.jpg`` ...  JPEG bytes      optional per-frame crops, one member per frame,
                                         ``f`` + six-digit frame position in the chunk
    ===================  ==============  =====================================================

A clip holds one feature set per encoder (name, width and weights: its encoder id), so
that every model of a sweep reads the same phi: ``lightning-hmd data features --add``
writes a further set beside the primary one, and a run reads the one its ``data.features``
names. Shards written before extra sets existed read unchanged.

Per-frame JPEGs are separate members (not an array, not a pickle): each one is a plain
JPEG file, and the zero-padded positions keep them in frame order when sorted.

Mocap members: ``meta.json`` (dataset, schema_version and, for poses of known order,
sequence and frame: the recording and the pose's index among its written poses),
``pose.npy`` float32 (72,), ``betas.npy`` float32 (10,).

Arrays are read with ``np.load(..., allow_pickle=False)`` and metadata with ``json`` only;
nothing is ever unpickled. Every decoder validates shapes, dtypes and finite values and
raises :class:`SchemaError` naming the member, the expected and the actual value.

Modules: ``members`` (names, kinds, version, :class:`SchemaError`), ``samples`` (the
dataclasses), ``keys`` (sample keys and member names), ``arrays`` (numpy members without
pickle), ``codec`` (validate, encode, decode). Everything public is re-exported here.
"""

from __future__ import annotations

from lightning_hmd.data.schema.codec import (
    decode_clip,
    decode_mocap,
    encode_clip,
    encode_mocap,
    num_frames_of,
    validate_clip,
    validate_mocap,
)
from lightning_hmd.data.schema.keys import (
    check_key,
    frame_member,
    is_known_member,
    make_key,
    make_mocap_key,
    split_member_name,
)
from lightning_hmd.data.schema.members import (
    BETAS,
    CLIP_ARRAY_MEMBERS,
    CLIP_MEMBERS,
    CROP_BOX,
    CROP_SCALE,
    FRAME_INDEX,
    FRAME_MEMBER_RE,
    JOINTS3D,
    JPEG_MAGIC,
    KINDS,
    KP2D,
    MAX_FEATURE_SETS,
    MAX_FRAMES,
    MAX_KEY_LENGTH,
    META,
    MOCAP_MEMBERS,
    MORE_PHI_RE,
    PHI,
    POSE,
    SCHEMA_VERSION,
    SchemaError,
    member_limit,
    more_phi_member,
)
from lightning_hmd.data.schema.samples import ClipSample, MocapSample

__all__ = [
    "BETAS",
    "CLIP_ARRAY_MEMBERS",
    "CLIP_MEMBERS",
    "CROP_BOX",
    "CROP_SCALE",
    "FRAME_INDEX",
    "FRAME_MEMBER_RE",
    "JOINTS3D",
    "JPEG_MAGIC",
    "KINDS",
    "KP2D",
    "MAX_FEATURE_SETS",
    "MAX_FRAMES",
    "MAX_KEY_LENGTH",
    "META",
    "MOCAP_MEMBERS",
    "MORE_PHI_RE",
    "PHI",
    "POSE",
    "SCHEMA_VERSION",
    "ClipSample",
    "MocapSample",
    "SchemaError",
    "check_key",
    "decode_clip",
    "decode_mocap",
    "encode_clip",
    "encode_mocap",
    "frame_member",
    "is_known_member",
    "make_key",
    "make_mocap_key",
    "member_limit",
    "more_phi_member",
    "num_frames_of",
    "split_member_name",
    "validate_clip",
    "validate_mocap",
]
