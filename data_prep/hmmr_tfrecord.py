"""``hmmr-tfrecord``: HMMR's released tfrecords (train and test tracks, and mocap), without
TensorFlow.

Source layout (as released; InstaVariety and VLOG-people exist only in this form)::

    SRC/<dataset>/<split>/*.tfrecord              one Example per person track
    SRC/mocap_neutrMosh/neutrSMPL_<source>_*.tfrecord   one Example per pose

Track Examples (HMMR's ``src/datasets/common.py`` ``convert_to_example_temporal``) hold
``meta/N``, ``image/encoded`` (N JPEG crops),
optionally ``image/phis`` (N x 2048 features of the same crops, HMR's ResNet-50 v2),
``image/xys`` (N x 2 x 14: x row then y row of the LSP-14 keypoints; in [-1, 1] in the
precomputed training records, in crop pixels in the test records), ``image/visibilities``
(N x 14), ``image/face_pts`` (N x 3 x 5) and ``image/toe_pts`` (N x 3 x 6) (x, y, visibility
rows), ``image/centers`` and ``image/scale_factors`` (N x 2), ``mosh/poses`` (N x 72, -1 when
there is no SMPL), ``mosh/shape`` (10), ``mosh/gt3ds`` (N x 14 x 3 metres), ``meta/has_3d``
and ``meta/has_3d_joints``, and in test records ``meta/time_pts`` (first and last frame).
Mocap Examples hold ``pose`` (72) and ``shape`` (10).

The crops are kept as they are (HMMR froze its augmentation into the training records), so
the reader's augmentation should be turned off for these sets. The records use the `tfrecord`
package's protobuf definition of ``tf.train.Example``; record checksums are not verified.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image
from tfrecord import example_pb2
from tfrecord.reader import tfrecord_iterator
from tqdm import tqdm

from data_prep.common import LayoutError, write_mocap
from lightning_hmd.body.joints import NUM_BETAS, NUM_KEYPOINTS, NUM_LSP_JOINTS, POSE_DIM
from lightning_hmd.data.manifest import MANIFEST_NAME, Manifest, read_manifest
from lightning_hmd.data.schema import ClipSample, MocapSample, make_key
from lightning_hmd.data.shards import ShardSetWriter
from lightning_hmd.errors import DataError

NAME = "hmmr-tfrecord"
LAYOUT = (
    "<dataset>/<split>/*.tfrecord and/or mocap_neutrMosh/neutrSMPL_<source>_*.tfrecord below "
    "the folder, or the folder is one <dataset>, one <split> or the mocap_neutrMosh folder"
)
HMR_ENCODER_ID = "resnet50_v2-d2048-hmr_noS5-642561"
FEAT_DIM = 2048
FACE_SLOTS = slice(14, 19)  # nose, l_eye, r_eye, l_ear, r_ear
TOE_SLOTS = slice(19, 25)  # l/r big toe, l/r small toe, l/r ankle
SPLITS = {"train": "train", "val": "val", "valid": "val", "test": "test"}
DEFAULT_FPS = 25.0  # not stored in the records
_MOCAP_RE = re.compile(r"neutrSMPL_(?P<source>[A-Za-z0-9.]+?)_")


def read_examples(path: Path) -> Iterator[dict[str, np.ndarray | list[bytes]]]:
    """The Examples of one tfrecord file as ``{key: values}``; errors name the file."""
    try:
        for i, record in enumerate(tfrecord_iterator(str(path))):
            example = example_pb2.Example()
            try:
                example.ParseFromString(bytes(record))
            except Exception as err:  # protobuf's DecodeError
                raise DataError(f"{path}: record {i} is not a tf.train.Example ({err})") from err
            out: dict[str, np.ndarray | list[bytes]] = {}
            for key, feature in example.features.feature.items():
                kind = feature.WhichOneof("kind")
                if kind == "bytes_list":
                    out[key] = list(feature.bytes_list.value)
                elif kind == "float_list":
                    out[key] = np.asarray(feature.float_list.value, np.float32)
                elif kind == "int64_list":
                    out[key] = np.asarray(feature.int64_list.value, np.int64)
            yield out
    except RuntimeError as err:  # the iterator's "Failed to read the record size" etc.
        raise DataError(f"{path}: truncated or corrupt tfrecord ({err})") from err


def _get(ex: dict, key: str, where: str, size: int | None = None) -> np.ndarray:
    if key not in ex:
        raise DataError(f"{where}: missing key {key!r}; has {sorted(ex)}")
    value = ex[key]
    if size is not None and len(value) != size:
        raise DataError(f"{where}: {key!r} has {len(value)} values, expected {size}")
    return value


def example_to_clip(ex: dict, dataset: str, split: str, sequence: str, where: str) -> ClipSample:
    """One track Example -> a clip sample (keypoints in normalised crop coordinates)."""
    n = int(_get(ex, "meta/N", where, 1)[0])
    jpeg = list(_get(ex, "image/encoded", where, n))
    with Image.open(io.BytesIO(jpeg[0])) as first:
        size = first.size[0]  # crop side in pixels
    xys = _get(ex, "image/xys", where, n * 2 * NUM_LSP_JOINTS).reshape(n, 2, NUM_LSP_JOINTS)
    vis = _get(ex, "image/visibilities", where, n * NUM_LSP_JOINTS).reshape(n, NUM_LSP_JOINTS)
    kp = np.zeros((n, NUM_KEYPOINTS, 3), np.float32)
    kp[:, :NUM_LSP_JOINTS, :2] = np.transpose(xys, (0, 2, 1))
    kp[:, :NUM_LSP_JOINTS, 2] = vis
    if "image/face_pts" in ex:
        kp[:, FACE_SLOTS] = (
            _get(ex, "image/face_pts", where, n * 15).reshape(n, 3, 5).transpose(0, 2, 1)
        )
    if "image/toe_pts" in ex:
        kp[:, TOE_SLOTS] = (
            _get(ex, "image/toe_pts", where, n * 18).reshape(n, 3, 6).transpose(0, 2, 1)
        )
    if "image/phis" not in ex:  # test records: crop pixels -> [-1, 1]
        kp[..., :2] = 2.0 * kp[..., :2] / size - 1.0
    kp[..., 2] = kp[..., 2] > 0
    kp[kp[..., 2] == 0] = 0.0
    centers = _get(ex, "image/centers", where, 2 * n).reshape(n, 2).astype(np.float32)
    scales = _get(ex, "image/scale_factors", where, 2 * n).reshape(n, 2)[:, 0].astype(np.float32)
    # Centres are in the scaled image; the box in original pixels is their preimage.
    half = size / (2.0 * scales)
    cx, cy = centers[:, 0] / scales, centers[:, 1] / scales
    crop_box = np.stack([cx - half, cy - half, cx + half, cy + half], -1)
    start = int(ex["meta/time_pts"][0]) if "meta/time_pts" in ex else 0
    has_smpl = bool(_get(ex, "meta/has_3d", where, 1)[0])
    has_joints = bool(_get(ex, "meta/has_3d_joints", where, 1)[0])
    phi = None
    if "image/phis" in ex:
        phi = _get(ex, "image/phis", where, n * FEAT_DIM).reshape(n, FEAT_DIM).astype(np.float16)
    return ClipSample(
        dataset=dataset,
        split=split,
        sequence=sequence,
        track_id=0,
        fps=DEFAULT_FPS,
        kp2d=kp,
        crop_box=crop_box.astype(np.float32),
        crop_scale=scales,
        frame_index=np.arange(start, start + n, dtype=np.int32),
        phi=phi,
        encoder_id=HMR_ENCODER_ID if phi is not None else None,
        jpeg=jpeg,
        joints3d=(
            _get(ex, "mosh/gt3ds", where, n * 42).reshape(n, NUM_LSP_JOINTS, 3)
            if has_joints
            else None
        ),
        pose=_get(ex, "mosh/poses", where, n * POSE_DIM).reshape(n, POSE_DIM) if has_smpl else None,
        betas=_get(ex, "mosh/shape", where, NUM_BETAS) if has_smpl else None,
    )


def _dataset_name(folder: str) -> str:
    name = re.sub(r"[^a-z0-9]+", "-", folder.lower()).strip("-")
    return re.sub(r"^tf-records-", "", name) or "hmmr"


def _clip_sets(src: Path) -> dict[tuple[str, str], list[Path]]:
    sets: dict[tuple[str, str], list[Path]] = {}
    for path in sorted(src.rglob("*.tfrecord")):
        split = SPLITS.get(path.parent.name)
        if split is None or "mocap" in path.parent.parent.name.lower():
            continue
        sets.setdefault((_dataset_name(path.parent.parent.name), split), []).append(path)
    return sets


def _in_mocap_folder(path: Path, src: Path) -> bool:
    """Whether a folder from ``src`` itself down to ``path``'s is a mocap folder (so ``src``
    may be the released root or its ``mocap_neutrMosh`` folder)."""
    folders = (src.resolve().name, *path.relative_to(src).parent.parts)
    return any("mocap" in name.lower() for name in folders)


def _mocap_sets(src: Path) -> dict[str, list[Path]]:
    sets: dict[str, list[Path]] = {}
    for path in sorted(src.rglob("*.tfrecord")):
        m = _MOCAP_RE.match(path.name)
        if m and _in_mocap_folder(path, src):
            source = {"H3.6": "h36m"}.get(m["source"], m["source"].lower().replace(".", ""))
            sets.setdefault(source, []).append(path)
    return sets


def _nothing_found(src: Path) -> str:
    """Why ``src`` holds no set: no tfrecord at all, or tfrecords in none of the places."""
    found = sorted(src.rglob("*.tfrecord"))
    if not found:
        return f"{src}: no *.tfrecord file below it; expected {LAYOUT}"
    examples = ", ".join(str(p.relative_to(src)) for p in found[:3])
    return (
        f"{src}: {len(found)} *.tfrecord file(s) ({examples}{', ...' if len(found) > 3 else ''})"
        f" but none where a set is: expected {LAYOUT} (split folders: {', '.join(SPLITS)})"
    )


def mocap_samples(files: list[Path], source: str) -> Iterator[MocapSample]:
    for path in files:
        for i, ex in enumerate(read_examples(path)):
            where = f"{path} example {i}"
            pose = _get(ex, "pose", where, POSE_DIM)
            yield MocapSample(pose, _get(ex, "shape", where, NUM_BETAS), source)


def convert(
    src: Path,
    out: Path,
    *,
    shard_size: int = 50,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Manifest]:
    """Convert every tfrecord set below ``src``: clip sets to ``OUT/<dataset>/<split>``, mocap
    to ``OUT/mocap_<source>``. ``src`` is the released root, or one of its ``<dataset>``,
    ``<dataset>/<split>`` or ``mocap_neutrMosh`` folders (that part alone is converted).
    Returns manifests by set path.

    Raises:
        LayoutError: ``src`` is not a folder or holds no set in the released layout (the
            message names it, the layout expected and any tfrecords found elsewhere).
    """
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise LayoutError(f"{src}: not a folder; expected {LAYOUT}")
    clip_sets, mocap_sets = _clip_sets(src), _mocap_sets(src)
    if not clip_sets and not mocap_sets:
        raise LayoutError(_nothing_found(src))
    manifests: dict[str, Manifest] = {}
    for (dataset, split), files in clip_sets.items():
        set_dir = out / dataset / split
        name = f"{dataset}/{split}"
        if not overwrite and (set_dir / MANIFEST_NAME).is_file():
            manifests[name] = read_manifest(set_dir)
            continue
        with ShardSetWriter(
            set_dir,
            split,
            shard_size,
            f"HMMR tfrecords {name}",
            overwrite=overwrite,
            resume=not overwrite,
        ) as writer:
            for path in tqdm(files, desc=name, disable=not progress, unit="file"):
                for i, ex in enumerate(read_examples(path)):
                    sequence = f"{path.stem}_{i:04d}"
                    key = make_key(dataset, sequence, 0, 0)
                    if not writer.is_done(key):
                        where = f"{path} example {i}"
                        writer.write(example_to_clip(ex, dataset, split, sequence, where), key)
        manifests[name] = writer.manifest
    for source, files in mocap_sets.items():
        manifests[f"mocap_{source}"] = write_mocap(
            out,
            mocap_samples(files, source),
            name=f"mocap_{source}",
            source=f"HMMR mocap tfrecords ({source})",
            overwrite=overwrite,
            progress=progress,
        )
    return manifests
