"""Read a TensorFlow checkpoint into an ``.npz`` (name -> array), in a process of its own.

``python -m lightning_hmd.models.tf_reader PREFIX OUT.npz`` exits 0 on success; on failure
it prints the reason to stderr and exits 2 (3 when tensorflow is missing). ``import-tf`` runs
it as a child process because importing TensorFlow into a process that already holds
PyTorch (and OpenGL, FFmpeg...) can crash it: the two ship conflicting native libraries.
"""

from __future__ import annotations

import sys

import numpy as np


def main(argv: list[str]) -> int:
    prefix, out = argv
    try:
        import tensorflow as tf
    except ImportError:
        print("tensorflow is not installed", file=sys.stderr)
        return 3
    try:
        reader = tf.train.load_checkpoint(prefix)
        names = sorted(reader.get_variable_to_shape_map())
        arrays = {name: reader.get_tensor(name) for name in names}
    except Exception as e:
        print(str(e).strip().splitlines()[0] if str(e).strip() else repr(e), file=sys.stderr)
        return 2
    np.savez(out, **arrays)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
