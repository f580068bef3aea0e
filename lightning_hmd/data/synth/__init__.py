"""The synthetic dataset (the embedded default): motions of the synthetic body model, rendered
frames, detector-like noisy 2D keypoints, exact 3D joints and SMPL parameters, written as
clip and mocap shard sets by ``lightning-hmd data synth``."""
