"""Precomputed image features: run an image encoder over the frames of clip shards.

HMMR trains on features phi precomputed once by its frozen image encoder (``FeatureExtractor``
in ``src/datasets/resnet_extractor.py``, the ``precomputed_phi`` flag of ``src/config.py``).
``lightning-hmd data features --in DIR --out DIR`` does the same: for every clip shard set
below ``--in`` it writes a set at the same relative path below ``--out`` whose clips carry
``phi.npy`` (float16, (T, D)) tagged with the encoder's id, and keypoints and crop boxes of the
centre crop the encoder saw (the central ``img_size`` pixels of the stored crop at scale 1:
HMMR's 224 px crops, the person 150 px tall, from the stored 300 px pre-crops). Frames of
all clips are batched together; conversion is resumable (completed shards are kept).

Augmented copies (HMMR's ``num_copy`` flag of its conversion scripts, e.g.
``src/datasets/h36_to_tfrecords_video.py``, drawn by ``TubePreprocessorDriver`` of
``src/util/tube_augmentation.py``): with ``copies=N`` and an augmentation config, every
*training* clip is written N times (keys ``<key>_aug<i>``), each with its own per-frame scale
and translation jitter and sequence flip frozen into the features, as HMMR writes its training
tfrecords; the draw is seeded by the key and copy index, so a resumed conversion writes the
same copies. Validation and test sets are always centre crops.

Several feature sets per clip (one per encoder and weights file, so that every temporal model
of a sweep reads the same phi): ``lightning-hmd data features --add`` (:func:`add_features`)
encodes the clips of the image sets again with another encoder and adds the result to the
existing feature sets, beside their phi (members ``phi_<k>.npy``,
:mod:`lightning_hmd.data.schema`). It draws the same augmented copies (the same keys, seed and
settings; the labels of every copy are checked against the stored ones), writes each set anew
in a hidden folder beside it and swaps it in when complete, so an interrupted add leaves the
old set as it was. Manifests record the sets their clips hold (``feature_sets``).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from tqdm import tqdm

from lightning_hmd.config_tree import AugmentConfig
from lightning_hmd.data.augment import apply_jitter, frame_affines, sample_jitter
from lightning_hmd.data.cropping import CropBox, crop_image, to_crop_normalised
from lightning_hmd.data.manifest import (
    MANIFEST_NAME,
    Manifest,
    read_manifest,
    record_feature_sets,
)
from lightning_hmd.data.schema import ClipSample, decode_clip, decode_mocap
from lightning_hmd.data.shards import ShardSetWriter
from lightning_hmd.data.tario import TarReadError, iter_shard_members
from lightning_hmd.errors import DataError


class FeatureError(DataError):
    """The input shards cannot be encoded (no frames, wrong kind...)."""


def build_feature_encoder(
    name: str, feat_dim: int, weights: str | Path | None, seed: int
) -> tuple[nn.Module, str]:
    """The frozen image encoder and its id: ``weights`` (an HMR init file holding the encoder,
    or the encoder's state dict saved with ``torch.save``; read with ``weights_only=True``) or
    a seeded random initialisation."""
    from lightning_hmd.checkpoint import load_checkpoint
    from lightning_hmd.models.encoders import build_image_encoder
    from lightning_hmd.models.hmr_init import encoder_state

    torch.manual_seed(seed)
    encoder = build_image_encoder(name, feat_dim, freeze=True)
    if weights is not None:
        state = load_checkpoint(weights, what="encoder weights file")
        state = encoder_state(state, weights) or state  # an HMR init file: its encoder
        missing, unexpected = encoder.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise FeatureError(
                f"{weights}: not a {name} (D={feat_dim}) state dict: missing {missing[:3]}, "
                f"unexpected {unexpected[:3]}"
            )
    return encoder, encoder_id_for(name, feat_dim, None if weights is None else Path(weights), seed)


def encoder_id_for(name: str, feat_dim: int, weights: Path | None, seed: int) -> str:
    """A stable id for an encoder: name, width and the weights' sha256 (or the init seed)."""
    if weights is None:
        return f"{name}-d{feat_dim}-init{seed}"
    digest = hashlib.sha256(Path(weights).read_bytes()).hexdigest()[:12]
    return f"{name}-d{feat_dim}-{digest}"


_ENCODER_ID_RE = re.compile(r"^(?P<name>[A-Za-z0-9_]+)-d(?P<dim>[1-9]\d*)-(?P<tag>.+)$")


def parse_encoder_id(encoder_id: str) -> tuple[str, int] | None:
    """(encoder name, feature width) of an id of the form ``<name>-d<dim>-<weights tag>``
    (:func:`encoder_id_for`; ``resnet50_v2-d2048-hmr_noS5-642561``); None for an id of
    another form (one written by other tools says nothing about its encoder)."""
    m = _ENCODER_ID_RE.match(encoder_id)
    return None if m is None else (m["name"], int(m["dim"]))


def decode_frames(jpegs: list[bytes]) -> np.ndarray:
    """T JPEGs -> (T, S, S, 3) uint8."""
    return np.stack([np.asarray(Image.open(io.BytesIO(j)).convert("RGB")) for j in jpegs])


def centre_crop_clip(
    sample: ClipSample, images: np.ndarray, size: int
) -> tuple[ClipSample, np.ndarray]:
    """Cut the central ``size`` x ``size`` pixels of every stored crop, at scale 1.

    Args:
        sample: the clip; kp2d in normalised coordinates of the stored crop of side S.
        images: (T, S, S, 3) uint8 stored crops.
        size: C, the output side.

    Returns:
        the clip with kp2d, crop_box and jpeg for the C crop (keypoints that leave it become
        invisible), and the (T, C, C, 3) crops.
    """
    s = images.shape[1]
    if images.shape[1:] != (s, s, 3):
        raise FeatureError(
            f"{sample.sequence}: stored crops must be square RGB, got {images.shape}"
        )
    if s == size:
        return sample, images
    box = CropBox(cx=(s - 1) / 2.0, cy=(s - 1) / 2.0, scale=1.0, size=size)
    crops = np.stack([crop_image(im, box) for im in images])
    kp_px = sample.kp2d.astype(np.float64).copy()
    kp_px[..., :2] = (kp_px[..., :2] + 1.0) * s / 2.0  # stored normalised -> stored pixels
    kp = np.stack([to_crop_normalised(k, box) for k in kp_px])
    outside = (np.abs(kp[..., :2]) > 1.0).any(axis=-1)
    kp[outside] = 0.0
    # Crop boxes in original pixels: the same centre, (C / S) of the side.
    x0, y0, x1, y1 = (sample.crop_box[:, i].astype(np.float64) for i in range(4))
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * size / (2.0 * s)
    crop_box = np.stack([cx - half, cy - half, cx + half, cy + half], axis=1).astype(np.float32)
    return replace(sample, kp2d=kp.astype(np.float32), crop_box=crop_box), crops


def augmented_copy(
    sample: ClipSample, images: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator, size: int
) -> tuple[ClipSample, np.ndarray]:
    """One augmented copy of a clip (HMMR's per-frame jitter and sequence flip:
    ``TubePreprocessor``, ``src/util/tube_augmentation.py``).

    Args:
        sample: the clip; kp2d normalised to the stored crops of side S.
        images: (T, S, S, 3) uint8 stored crops.
        cfg: the augmentation settings (``data.augment``).
        rng: the copy's random stream.
        size: C, the output side.

    Returns:
        the clip with kp2d and 3D labels of the augmented crops and crop boxes of what each
        crop shows in original-image pixels, and the (T, C, C, 3) crops.
    """
    jitter = sample_jitter(sample.num_frames, cfg, rng, size)
    out, crops = apply_jitter(sample, images, jitter, size)
    # What each output crop shows: [0, C) in stored pixels (the flip mirrors the crop about
    # its centre, so the region is that of the unflipped map), then in original pixels
    # through the stored crop box.
    m = frame_affines(replace(jitter, flip=False), images.shape[1], size)
    a, bx, by = m[:, 0, 0], m[:, 0, 2], m[:, 1, 2]
    s = images.shape[1]
    x0, y0, x1, y1 = (sample.crop_box[:, i].astype(np.float64) for i in range(4))
    sx, sy = (x1 - x0) / s, (y1 - y0) / s  # original pixels per stored pixel
    box = np.stack(
        [x0 - bx / a * sx, y0 - by / a * sy, x0 + (size - bx) / a * sx, y0 + (size - by) / a * sy],
        axis=1,
    )
    return replace(out, crop_box=box.astype(np.float32)), crops


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, C, C, 3) uint8 -> (N, 3, C, C) float32 in [-1, 1] (HMMR's input range:
    ``rescale_image``, ``src/util/data_utils.py``)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0


@dataclass
class _Pending:
    key: str
    sample: ClipSample
    images: np.ndarray


def _members(set_dir: Path, manifest: Manifest) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Every sample's members, in shard order; a damaged shard raises FeatureError."""
    for entry in manifest.shards:
        path = set_dir / entry.name
        try:
            for key, members, problems in iter_shard_members(path, manifest.kind):
                if problems:
                    raise FeatureError(f"{path}: {problems[0]} (run 'lightning-hmd data check')")
                yield key, members
        except TarReadError as err:
            raise FeatureError(f"{path}: {err} (run 'lightning-hmd data check')") from err


def _encode_batches(
    pending: list[_Pending],
    encode: Callable[[torch.Tensor], torch.Tensor],
    batch_frames: int,
) -> list[np.ndarray]:
    frames = np.concatenate([p.images for p in pending])
    feats = []
    for i in range(0, len(frames), batch_frames):
        feats.append(encode(to_tensor(frames[i : i + batch_frames])).float().cpu().numpy())
    phi = np.concatenate(feats).astype(np.float16)
    if not np.isfinite(phi).all():
        raise FeatureError("the encoder produced non-finite features (float16 overflow?)")
    return np.split(phi, np.cumsum([len(p.images) for p in pending])[:-1])


def find_sets(root: Path) -> list[Path]:
    """Shard set directories at or below ``root`` (those holding a manifest; none inside a
    hidden folder, such as a feature set being added, :func:`add_features`)."""
    root = Path(root)
    if (root / MANIFEST_NAME).is_file():
        return [root]
    sets = sorted(
        p.parent
        for p in root.rglob(MANIFEST_NAME)
        if not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    if not sets:
        raise FeatureError(f"{root}: no shard set (no {MANIFEST_NAME} at or below it)")
    return sets


def extract_features(
    in_dir: str | Path,
    out_dir: str | Path,
    encoder: nn.Module,
    encoder_id: str,
    *,
    img_size: int,
    batch_frames: int = 64,
    keep_jpeg: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    device: str | torch.device = "cpu",
    augment: AugmentConfig | None = None,
    copies: int = 1,
    seed: int = 0,
) -> dict[str, Manifest]:
    """Encode every clip frame below ``in_dir`` and write clips with phi below ``out_dir``.

    Mocap sets are copied sample by sample (they have no frames).

    Args:
        in_dir: a shard set directory or a folder of them.
        out_dir: output root; each set keeps its path relative to ``in_dir``.
        encoder: (N, 3, C, C) in [-1, 1] -> (N, D); run in eval mode without gradients.
        encoder_id: the id stored with the features (see :func:`encoder_id_for`).
        img_size: C, the encoder's input side.
        batch_frames: frames per encoder call.
        keep_jpeg: also keep the C x C crops as JPEGs (for visualisation).
        overwrite: replace complete output sets; otherwise they raise ``FileExistsError``.
        progress: show a progress bar over frames.
        device: where the encoder runs.
        augment: with settings whose ``enabled`` is true, training sets are written as
            ``copies`` augmented copies per clip (see the module docstring).
        copies: augmented copies per training clip (HMMR writes 5: ``--num_copy 5`` in
            ``prepare_datasets.sh``).
        seed: seeds the augmentation draws together with each clip's key.

    Returns:
        output set path (relative, posix) -> manifest.
    """
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    _check_copies(augment, copies)
    manifests = {s: read_manifest(s) for s in find_sets(in_dir)}
    clips = [m for m in manifests.values() if m.kind == "clip"]
    total = sum(m.total_frames * _num_copies(m, augment, copies) for m in clips)
    encode = _inference(encoder, device)
    bar = tqdm(total=total, unit="frame", desc="features", disable=not progress)
    job = _Encoding(encode, encoder_id, img_size, batch_frames, keep_jpeg, bar, copies, seed)
    out: dict[str, Manifest] = {}
    for set_dir, manifest in manifests.items():
        rel = set_dir.relative_to(in_dir)
        target = out_dir / rel
        if (target / MANIFEST_NAME).is_file() and not overwrite:
            done = read_manifest(target)  # a complete set from an earlier run
            bar.update(done.total_frames if done.kind == "clip" else 0)
            out[rel.as_posix()] = done
        else:
            out[rel.as_posix()] = _write_set(set_dir, manifest, target, job, augment, overwrite)
    bar.close()
    return out


@dataclass(frozen=True)
class _Encoding:
    """How the clips of one run are encoded: the encoder call and what the features carry."""

    encode: Callable[[torch.Tensor], torch.Tensor]
    encoder_id: str
    img_size: int
    batch_frames: int
    keep_jpeg: bool
    bar: tqdm
    copies: int
    seed: int


def _check_copies(augment: AugmentConfig | None, copies: int) -> None:
    """More than one copy per clip needs augmentation settings that are enabled."""
    if copies < 1:
        raise FeatureError(f"copies must be >= 1, got {copies}")
    if copies > 1 and not (augment is not None and augment.enabled):
        raise FeatureError(f"{copies} copies need augmentation settings with enabled=true")


def _set_augment(manifest: Manifest, augment: AugmentConfig | None) -> AugmentConfig | None:
    """The augmentation a set's clips get: enabled settings for training sets, else None."""
    if augment is not None and augment.enabled and manifest.split == "train":
        return augment
    return None


def _num_copies(manifest: Manifest, augment: AugmentConfig | None, copies: int) -> int:
    """Copies written per clip of a set: ``copies`` for augmented sets, else one."""
    return copies if _set_augment(manifest, augment) is not None else 1


def _inference(
    encoder: nn.Module, device: str | torch.device
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The encoder on ``device`` in eval mode, called without gradients."""
    encoder = encoder.to(device).eval()

    @torch.inference_mode()
    def encode(x: torch.Tensor) -> torch.Tensor:
        return encoder(x.to(device))

    return encode


def _write_set(
    set_dir: Path,
    manifest: Manifest,
    target: Path,
    job: _Encoding,
    augment: AugmentConfig | None,
    overwrite: bool,
) -> Manifest:
    """Write one set below ``target``: clips with phi, mocap copied; resume unless overwriting."""
    jitter = _set_augment(manifest, augment)
    source = f"features {job.encoder_id} of {manifest.source}"
    if jitter is not None:
        source += f", {job.copies} augmented copies (seed {job.seed})"
    per_shard = max(s.samples for s in manifest.shards) if manifest.shards else 1
    with ShardSetWriter(
        target, manifest.split, per_shard, source, overwrite=overwrite, resume=not overwrite
    ) as writer:
        if manifest.kind == "mocap":
            _copy_mocap(set_dir, manifest, writer)
        else:
            _encode_set(set_dir, manifest, writer, job, jitter)
    written = writer.close()
    if manifest.kind == "clip":
        return record_feature_sets(target, [job.encoder_id])
    return written


def _copy_mocap(set_dir: Path, manifest: Manifest, writer: ShardSetWriter) -> None:
    for key, members in _members(set_dir, manifest):
        writer.write(decode_mocap(members), key)


def _encode_set(
    set_dir: Path,
    manifest: Manifest,
    writer: ShardSetWriter,
    job: _Encoding,
    augment: AugmentConfig | None,
) -> None:
    for p, phi in _encoded(_copies(set_dir, manifest, job, augment, writer.is_done), job):
        jpeg = [_jpeg(im) for im in p.images] if job.keep_jpeg else None
        # the one feature set of this encoder (an image set's own sets are not carried over)
        out = replace(p.sample, phi=phi, encoder_id=job.encoder_id, jpeg=jpeg, more_phi={})
        writer.write(out, p.key)
        job.bar.update(len(p.images))


def _copies(
    set_dir: Path,
    manifest: Manifest,
    job: _Encoding,
    augment: AugmentConfig | None,
    is_done: Callable[[str], bool],
) -> Iterator[list[_Pending]]:
    """Per clip of the image set, in order, its copies still to write: the centre crop
    (``augment`` None), or ``job.copies`` augmented copies keyed ``<key>_aug<c>``, each drawn
    from a stream seeded by the seed, the clip's key and ``c``."""
    for key, members in _members(set_dir, manifest):
        sample = decode_clip(members)
        keys = [key] if augment is None else [f"{key}_aug{c}" for c in range(job.copies)]
        todo = [(c, k) for c, k in enumerate(keys) if not is_done(k)]
        job.bar.update(sample.num_frames * (len(keys) - len(todo)))
        if not todo:
            continue
        if sample.jpeg is None:
            raise FeatureError(
                f"{set_dir}: clip {key!r} has no JPEG frames to encode (written with --no-jpeg?)"
            )
        stored = decode_frames(sample.jpeg)
        group = []
        for c, out_key in todo:
            if augment is None:
                copy, images = centre_crop_clip(sample, stored, job.img_size)
            else:
                rng = np.random.default_rng([job.seed, zlib.crc32(key.encode()), c])
                copy, images = augmented_copy(sample, stored, augment, rng, job.img_size)
            group.append(_Pending(out_key, copy, images))
        yield group


def _encoded(
    groups: Iterable[list[_Pending]], job: _Encoding
) -> Iterator[tuple[_Pending, np.ndarray]]:
    """Each copy with its (T, D) float16 phi, in order; the frames of several clips go to the
    encoder together, in calls of ``job.batch_frames`` frames, once a clip's copies bring
    the frames waiting to ``job.batch_frames`` or more."""
    pending: list[_Pending] = []
    queued = 0
    for group in groups:
        pending += group
        queued += sum(len(p.images) for p in group)
        if queued >= job.batch_frames:
            yield from zip(
                pending, _encode_batches(pending, job.encode, job.batch_frames), strict=False
            )
            pending, queued = [], 0
    if pending:
        yield from zip(
            pending, _encode_batches(pending, job.encode, job.batch_frames), strict=False
        )


def _jpeg(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


# --------------------------------------------------------------------------- adding a set

ADD_TMP = ".{name}.add.tmp"  # the new set being written, beside the one it replaces
REPLACED = ".{name}.replaced"  # the old set during the swap


def add_features(
    in_dir: str | Path,
    feat_dir: str | Path,
    encoder: nn.Module,
    encoder_id: str,
    *,
    img_size: int,
    batch_frames: int = 64,
    overwrite: bool = False,
    progress: bool = True,
    device: str | torch.device = "cpu",
    augment: AugmentConfig | None = None,
    copies: int = 1,
    seed: int = 0,
) -> dict[str, Manifest]:
    """Add the features of ``encoder`` as a further feature set to the clip sets below
    ``feat_dir`` that :func:`extract_features` wrote from the image sets below ``in_dir``.

    Every clip of a feature set gets the new set (member ``phi_<k>.npy``, its id in
    ``meta.more_encoder_ids``; the manifest's ``feature_sets`` gains the id). The clips are
    cropped and augmented as :func:`extract_features` crops them: ``augment``, ``copies``,
    ``seed`` and ``img_size`` must be those the feature sets were written with (the keys and
    the labels of every copy are checked against the stored ones). Each set is written anew in
    a hidden folder beside it and swapped in once complete: an interrupted add leaves the old
    set as it was (the next add starts that set again). Mocap sets are left alone.

    Args:
        in_dir: the image sets (a shard set directory or a folder of them).
        feat_dir: the feature sets, at the same relative paths.
        encoder, encoder_id, img_size, batch_frames, progress, device, augment, copies, seed:
            as for :func:`extract_features`.
        overwrite: replace the set ``encoder_id`` where a set holds it already; otherwise
            such a set is refused before anything is written.

    Returns:
        feature set path (relative, posix) -> its new manifest.

    Raises:
        FeatureError: a feature set is missing, holds no features, holds ``encoder_id``
            (without ``overwrite``), or does not match its image set.
    """
    from lightning_hmd.data.loader import probe_feature_sets

    in_dir, feat_dir = Path(in_dir), Path(feat_dir)
    _check_copies(augment, copies)
    sources = {s: m for s in find_sets(in_dir) if (m := read_manifest(s)).kind == "clip"}
    targets = {s: feat_dir / s.relative_to(in_dir) for s in sources}
    for s, target in targets.items():
        _recover_swap(target)
        if not (target / MANIFEST_NAME).is_file():
            raise FeatureError(
                f"{target}: no complete feature set to add to; write it first with "
                f"`lightning-hmd data features --in {s} --out ...` (without --add)"
            )
    held = probe_feature_sets(list(targets.values()))
    for target in targets.values():
        ids = held[str(target)]
        if not ids:
            raise FeatureError(
                f"{target}: its clips hold no features; write them with `lightning-hmd data "
                "features` (without --add) first"
            )
        if encoder_id in ids and not overwrite:
            raise FeatureError(
                f"{target} already holds the feature set {encoder_id} (it holds "
                f"{', '.join(ids)}); pass --overwrite to write it again"
            )
    totals = {t: read_manifest(t).total_frames for t in targets.values()}
    bar = tqdm(total=sum(totals.values()), unit="frame", desc="features", disable=not progress)
    job = _Encoding(
        _inference(encoder, device), encoder_id, img_size, batch_frames, False, bar, copies, seed
    )
    out = {}
    for s, target in targets.items():
        ids = held[str(target)]
        ids = ids if encoder_id in ids else (*ids, encoder_id)
        jitter = _set_augment(sources[s], augment)
        out[target.relative_to(feat_dir).as_posix()] = _add_set(
            s, sources[s], target, ids, job, jitter
        )
    bar.close()
    return out


def _add_set(
    set_dir: Path,
    manifest: Manifest,
    target: Path,
    ids: Sequence[str],
    job: _Encoding,
    augment: AugmentConfig | None,
) -> Manifest:
    """Write ``target`` anew beside it with the feature set ``job.encoder_id`` added to every
    clip, then swap it in (:func:`_swap`)."""
    target = Path(os.path.abspath(target))  # a name to put the hidden folders beside
    old = read_manifest(target)
    tmp = target.with_name(ADD_TMP.format(name=target.name))
    if tmp.exists():
        shutil.rmtree(tmp)  # an add interrupted before its swap: start that set again
    per_shard = max((s.samples for s in old.shards), default=1)
    last_keys = {s.entries[-1].key for s in old.shards if s.entries}
    stored = _members(target, old)
    copies = _encoded(_copies(set_dir, manifest, job, augment, lambda _key: False), job)
    added = f"; + features {job.encoder_id}"
    source = old.source if old.source.endswith(added) else old.source + added
    with ShardSetWriter(tmp, old.split, per_shard, source) as writer:
        for p, phi in copies:
            key, members = next(stored, (None, None))
            if key != p.key:
                raise FeatureError(
                    f"{target}: holds {key!r} where the image set {set_dir} gives {p.key!r}: "
                    "the feature set was written from other images or with other --copies"
                )
            sample = decode_clip(members)
            _check_same_labels(sample, p.sample, target, key)
            writer.write(_with_feature_set(sample, job.encoder_id, phi), key)
            job.bar.update(len(p.images))
            if key in last_keys:
                writer.end_shard()  # the shards keep their samples
        extra = next(stored, None)
        if extra is not None:
            raise FeatureError(
                f"{target}: holds {extra[0]!r}, which the image set {set_dir} does not give"
            )
    writer.close()
    record_feature_sets(tmp, ids)
    _swap(tmp, target)
    return read_manifest(target)


_LABELS = ("kp2d", "crop_box", "crop_scale", "frame_index", "joints3d", "pose", "betas")


def _check_same_labels(stored: ClipSample, made: ClipSample, target: Path, key: str) -> None:
    """The copy made now must be the stored one (its augmentation draws and crop): equal
    labels, value for value."""
    for name in _LABELS:
        a, b = getattr(stored, name), getattr(made, name)
        if (a is None) != (b is None) or (a is not None and not np.array_equal(a, b)):
            raise FeatureError(
                f"{target} [{key}]: {name} of the stored clip differs from the copy made now: "
                "add with the --copies, --seed, --img-size and preset (data.augment) the "
                "feature set was written with"
            )


def _with_feature_set(sample: ClipSample, encoder_id: str, phi: np.ndarray) -> ClipSample:
    """The clip with ``phi`` as its feature set ``encoder_id`` (replaced where it holds it,
    else added after the others)."""
    if encoder_id == sample.encoder_id:
        return replace(sample, phi=phi)
    more = dict(sample.more_phi)
    more[encoder_id] = phi  # a set held keeps its place
    return replace(sample, more_phi=more)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _swap(new: Path, target: Path) -> None:
    """Put the complete set ``new`` in the place of ``target``: ``target`` moves aside to a
    hidden name, ``new`` takes its name, the old one is removed. Between the two renames no
    set is at ``target`` (never a partial one); :func:`_recover_swap` puts the old one back."""
    replaced = target.with_name(REPLACED.format(name=target.name))
    if replaced.exists():
        shutil.rmtree(replaced)
    os.replace(target, replaced)
    os.replace(new, target)
    _fsync_dir(target.parent)
    shutil.rmtree(replaced)


def _recover_swap(target: Path) -> None:
    """After a swap interrupted between its renames: the old set back at ``target``; after one
    interrupted before its clean-up: the old set removed."""
    replaced = target.with_name(REPLACED.format(name=target.name))
    if not replaced.exists():
        return
    if target.exists():
        shutil.rmtree(replaced)
    else:
        os.replace(replaced, target)
