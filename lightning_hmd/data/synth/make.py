"""Write the synthetic dataset: clip shard sets (train/val/test) and a mocap shard set.

Every track is one motion of the synthetic body model seen by a pinhole camera: rendered
frames (optional), 2D keypoints projected from the model's 25 keypoints with detector-like
noise and occlusion (random drop-outs, occluded stretches of frames, keypoints outside the
frame), exact 3D LSP joints in metres and SMPL parameters. Tracks then go through HMMR's
preprocessing (:func:`lightning_hmd.data.tracks.write_track`: boxes from the noisy visible
keypoints, smoothed, person scaled to a fixed height, crops), so the crops jitter as a real
detector's do. Deterministic for a seed; an interrupted run resumes.

With ``workers > 1`` tracks are made and rendered in that many processes (each with its own
renderer) and written in order by the calling process, so the shards are the same as with
one process.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from lightning_hmd.body.joints import NUM_LSP_JOINTS
from lightning_hmd.body.smpl import BodyModel
from lightning_hmd.body.synth import write_synthetic_model
from lightning_hmd.data.manifest import MANIFEST_NAME, Manifest, read_manifest
from lightning_hmd.data.schema import MocapSample
from lightning_hmd.data.shards import ShardSetWriter
from lightning_hmd.data.synth.appearance import part_colours
from lightning_hmd.data.synth.motion import Motion, make_motion
from lightning_hmd.data.synth.spec import SPLITS, SynthSpec
from lightning_hmd.data.tracks import Track, write_track
from lightning_hmd.geometry.rotations import axis_angle_to_matrix

DATASET = "synthetic"


@dataclass(frozen=True)
class Posed:
    """A motion through the body model: vertices (T, V, 3), keypoints (T, 25, 3) and LSP
    joints (T, 14, 3), metres, camera frame."""

    vertices: np.ndarray
    keypoints: np.ndarray
    lsp14: np.ndarray


def pose_motion(body: BodyModel, motion: Motion) -> Posed:
    """Run the body model over a motion and place it in front of the camera."""
    t = len(motion.pose)
    rotmat = axis_angle_to_matrix(torch.from_numpy(motion.pose).view(t, 24, 3))
    betas = torch.from_numpy(motion.betas).expand(t, -1)
    with torch.no_grad():
        out = body(rotmat, betas)
    shift = motion.translation[:, None, :]
    joints = out.joints.numpy() + shift
    return Posed(out.vertices.numpy() + shift, joints, joints[:, :NUM_LSP_JOINTS])


def project(points: np.ndarray, focal: float, image_size: int) -> np.ndarray:
    """Pinhole projection (..., 3) -> (..., 2) pixels, principal point at the image centre,
    pixel centres at integer coordinates (as the renderer)."""
    c = (image_size - 1) / 2.0
    return focal * points[..., :2] / points[..., 2:3] + c


def observe_keypoints(
    keypoints: np.ndarray, spec: SynthSpec, rng: np.random.Generator
) -> np.ndarray:
    """Detector-like 2D keypoints (T, 25, 3) in pixels with visibility from 3D keypoints."""
    t, k, _ = keypoints.shape
    xy = project(keypoints, spec.focal, spec.image_size)
    xy = xy + rng.normal(0.0, spec.kp_noise, xy.shape)
    vis = rng.random((t, k)) >= spec.occlusion
    if rng.random() < 0.3:  # an occluder hides one side of the body for a stretch of frames
        a = int(rng.integers(0, t))
        b = min(t, a + int(rng.integers(3, max(4, t // 3))))
        side = rng.choice(k, size=k // 3, replace=False)
        vis[a:b, side] = False
    inside = np.all((xy >= 0) & (xy <= spec.image_size - 1), axis=-1)
    vis &= inside
    return np.concatenate([np.where(vis[..., None], xy, 0.0), vis[..., None]], -1)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth random colour gradient with mild noise (uint8, (S, S, 3))."""
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    ramp = np.linspace(0.0, 1.0, size)[:, None, None]
    image = a + (b - a) * ramp + rng.normal(0.0, 6.0, (size, size, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def make_track(
    body: BodyModel,
    split: str,
    index: int,
    spec: SynthSpec,
    renderer: object | None,
) -> Track:
    """The ``index``-th track of a split (deterministic in ``spec.seed``)."""
    rng = np.random.default_rng([spec.seed, SPLITS.index(split), index])
    frames = spec.frames_of(split)
    motion = make_motion(frames, rng, spec.fps)
    posed = pose_motion(body, motion)
    kp2d = observe_keypoints(posed.keypoints, spec, rng)
    load: Callable[[int], np.ndarray] | None = None
    if renderer is not None:
        background = _background(rng, spec.image_size)
        smpl = body.smpl
        colour = part_colours(smpl.lbs_weights.numpy(), smpl.v_template.numpy(), rng)

        def load(i: int) -> np.ndarray:
            return renderer.render(posed.vertices[i], colour, background)[0]

    return Track(
        dataset=DATASET,
        split=split,
        sequence=f"{split}{index:05d}",
        track_id=0,
        fps=spec.fps,
        frame_index=np.arange(frames),
        kp2d=kp2d,
        load_frame=load,
        joints3d=posed.lsp14.astype(np.float32),
        pose=motion.pose,
        betas=motion.betas,
    )


MOCAP_FRAMES = 100  # frames per synthetic mocap motion


def mocap_samples(spec: SynthSpec) -> list[MocapSample]:
    """``spec.mocap`` poses: every frame of random motions of :data:`MOCAP_FRAMES` frames at
    the clips' frame rate, in order, each named by its motion (deterministic)."""
    rng = np.random.default_rng([spec.seed, len(SPLITS)])
    out: list[MocapSample] = []
    while len(out) < spec.mocap:
        m = make_motion(MOCAP_FRAMES, rng, spec.fps)
        name = f"motion{len(out) // MOCAP_FRAMES:05d}"
        out += [
            MocapSample(p, m.betas, DATASET, sequence=name, frame=i) for i, p in enumerate(m.pose)
        ]
    return out[: spec.mocap]


class _Collect:
    """A stand-in writer that keeps what :func:`write_track` writes (in a worker process)."""

    def __init__(self) -> None:
        self.samples: list = []

    def is_done(self, key: str) -> bool:
        return False

    def write(self, sample: object, key: str) -> None:
        self.samples.append((sample, key))


_WORKER: dict = {}  # per worker process: body model, renderer, spec


def _pool_init(body_dir: str, spec: SynthSpec) -> None:
    torch.set_num_threads(1)  # one core per worker process
    _worker_init(body_dir, spec)


def _worker_init(body_dir: str, spec: SynthSpec) -> None:
    body = BodyModel.from_dir(body_dir)
    renderer = None
    if spec.render:
        from lightning_hmd.data.synth.render import BodyRenderer

        renderer = BodyRenderer(body.faces.numpy(), spec.image_size, spec.focal)
    _WORKER.update(body=body, renderer=renderer, spec=spec)


def _track_samples(job: tuple[str, int]) -> list:
    split, index = job
    spec = _WORKER["spec"]
    collect = _Collect()
    track = make_track(_WORKER["body"], split, index, spec, _WORKER["renderer"])
    write_track(
        collect,
        track,
        chunk_len=spec.frames_of(split),
        crop_size=spec.crop_size(split),
        jpeg=spec.render,
        person_height=spec.person_height,
    )
    return collect.samples


def _key(split: str, index: int) -> str:
    return f"{DATASET}__{split}{index:05d}__t0000_c0000"


@contextmanager
def _track_maker(body_dir: str, spec: SynthSpec, workers: int) -> Iterator[Callable]:
    """``with _track_maker(body_dir, spec, workers) as make: make(jobs)`` yields the samples of
    each ``(split, index)`` job in order, from this process or a pool of worker processes."""
    if workers > 1:
        # spawn, not fork: a forked OpenGL context or torch thread pool is not safe
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(workers, initializer=_pool_init, initargs=(body_dir, spec)) as pool:
            yield lambda jobs: pool.imap(_track_samples, jobs)
        return
    _worker_init(body_dir, spec)
    try:
        yield lambda jobs: map(_track_samples, jobs)
    finally:
        if _WORKER.get("renderer") is not None:
            _WORKER["renderer"].close()
        _WORKER.clear()


def _complete(set_dir: Path, overwrite: bool) -> bool:
    """A finished set from an earlier run (kept unless ``overwrite``)."""
    return not overwrite and (set_dir / MANIFEST_NAME).is_file()


def make_synthetic_dataset(
    out: str | Path,
    spec: SynthSpec,
    body_dir: str | Path | None = None,
    *,
    overwrite: bool = False,
    progress: bool = True,
    workers: int = 1,
) -> dict[str, Manifest]:
    """Write ``OUT/{train,val,test,mocap}`` shard sets and, without ``body_dir``, the synthetic
    body model to ``OUT/body_model``; ``workers`` processes make the tracks. Returns the
    manifests by set name."""
    out = Path(out)
    if body_dir is None:
        body_dir = write_synthetic_model(out / "body_model")
    source = f"lightning-hmd data synth (seed {spec.seed})"
    manifests: dict[str, Manifest] = {}
    todo = [s for s in SPLITS if not _complete(out / s, overwrite)]
    manifests.update({s: read_manifest(out / s) for s in SPLITS if s not in todo})
    with _track_maker(str(body_dir), spec, workers) as make:
        for split in todo:
            with ShardSetWriter(
                out / split,
                split,
                spec.shard_size,
                source,
                overwrite=overwrite,
                resume=not overwrite,
            ) as writer:
                # a kept shard of an interrupted run holds the tracks it names
                jobs = [
                    (split, i)
                    for i in range(spec.count(split))
                    if not writer.is_done(_key(split, i))
                ]
                bar = tqdm(
                    total=spec.count(split),
                    initial=spec.count(split) - len(jobs),
                    desc=split,
                    disable=not progress,
                )
                for samples in make(jobs):
                    for sample, key in samples:
                        writer.write(sample, key)
                    bar.update()
                bar.close()
            manifests[split] = writer.manifest
    if _complete(out / "mocap", overwrite):
        manifests["mocap"] = read_manifest(out / "mocap")
        return manifests
    with ShardSetWriter(
        out / "mocap", "train", 500, source, overwrite=overwrite, resume=not overwrite
    ) as writer:
        for i, sample in enumerate(mocap_samples(spec)):
            writer.write(sample, f"{DATASET}__m{i:06d}")
    manifests["mocap"] = writer.manifest
    return manifests
