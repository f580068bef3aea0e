"""Body model: SMPL through smplx, model files, joint conventions.

Modules: ``joints`` (joint orders), ``model_files`` (directory layout; the only reader of
model files), ``smpl`` (``BodyModel``), ``synth`` (synthetic stand-in model), ``convert``
(official SMPL pickle -> npz layout). Importing this package loads nothing heavy.
"""
