"""lightning_hmd: Learning 3D Human Dynamics from Video (HMMR) on PyTorch Lightning.

Importing the package loads no body model, logger or renderer.
"""

__version__ = "0.1.0"
