"""What ``data synth`` makes (a plain dataclass, cheap to import for the CLI)."""

from __future__ import annotations

from dataclasses import dataclass

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SynthSpec:
    """What ``data synth`` makes.

    Attributes:
        clips: training tracks; ``val_clips`` and ``test_clips`` for the other splits.
        frames: frames per track (one chunk per track).
        train_frames: frames per training track (0: ``frames``). Shorter training tracks
            buy more distinct people, motions and backgrounds for the same rendering time.
        image_size: side of the rendered "original" frames in pixels.
        img_size: the model's input crop side C; stored crops are C (val/test) and
            C * 300 / 224 (train, HMMR's pre-crop ratio); the person is C * 150 / 224 tall.
        fps: frame rate.
        occlusion: probability that a keypoint is dropped in a frame.
        kp_noise: standard deviation of 2D keypoint noise in original-image pixels.
        mocap: mocap poses for the discriminator (every frame of 100-frame motions).
        shard_size: samples per shard.
        seed: everything is a function of it.
        render: render frames and store JPEG crops (needs headless OpenGL).
    """

    clips: int = 64
    val_clips: int = 8
    test_clips: int = 8
    frames: int = 40
    train_frames: int = 0
    image_size: int = 128
    img_size: int = 64
    fps: float = 30.0
    occlusion: float = 0.05
    kp_noise: float = 1.0
    mocap: int = 10000
    shard_size: int = 16
    seed: int = 0
    render: bool = True

    def count(self, split: str) -> int:
        return {"train": self.clips, "val": self.val_clips, "test": self.test_clips}[split]

    def frames_of(self, split: str) -> int:
        """Frames per track of a split."""
        return self.train_frames if split == "train" and self.train_frames > 0 else self.frames

    def crop_size(self, split: str) -> int:
        return round(self.img_size * 300 / 224) if split == "train" else self.img_size

    @property
    def person_height(self) -> float:
        return self.img_size * 150 / 224

    @property
    def focal(self) -> float:
        return 2.0 * self.image_size
