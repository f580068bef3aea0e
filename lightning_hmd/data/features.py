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
"""

from __future__ import annotations

import hashlib
import io
import re
import zlib
from collections.abc import Callable, Iterator
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
from lightning_hmd.data.manifest import MANIFEST_NAME, Manifest, read_manifest
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
    """Shard set directories at or below ``root`` (those holding a manifest)."""
    root = Path(root)
    if (root / MANIFEST_NAME).is_file():
        return [root]
    sets = sorted(p.parent for p in root.rglob(MANIFEST_NAME))
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
    return writer.close()


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
    pending: list[_Pending] = []
    queued = 0

    def flush() -> None:
        nonlocal queued
        if not pending:
            return
        phis = _encode_batches(pending, job.encode, job.batch_frames)
        for p, phi in zip(pending, phis, strict=True):
            jpeg = None
            if job.keep_jpeg:
                jpeg = [_jpeg(im) for im in p.images]
            writer.write(replace(p.sample, phi=phi, encoder_id=job.encoder_id, jpeg=jpeg), p.key)
            job.bar.update(len(p.images))
        pending.clear()
        queued = 0

    for key, members in _members(set_dir, manifest):
        sample = decode_clip(members)
        keys = [key] if augment is None else [f"{key}_aug{c}" for c in range(job.copies)]
        todo = [(c, k) for c, k in enumerate(keys) if not writer.is_done(k)]
        job.bar.update(sample.num_frames * (len(keys) - len(todo)))
        if not todo:
            continue
        if sample.jpeg is None:
            raise FeatureError(
                f"{set_dir}: clip {key!r} has no JPEG frames to encode (written with --no-jpeg?)"
            )
        stored = decode_frames(sample.jpeg)
        for c, out_key in todo:
            if augment is None:
                copy, images = centre_crop_clip(sample, stored, job.img_size)
            else:
                rng = np.random.default_rng([job.seed, zlib.crc32(key.encode()), c])
                copy, images = augmented_copy(sample, stored, augment, rng, job.img_size)
            pending.append(_Pending(out_key, copy, images))
            queued += len(images)
        if queued >= job.batch_frames:
            flush()
    flush()


def _jpeg(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=90)
    return buf.getvalue()
