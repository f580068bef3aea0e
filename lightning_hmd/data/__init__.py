"""Data: ground-truth clips and mocap for training and evaluation."""
