"""Body model: SMPL through smplx, model files, joint conventions."""
