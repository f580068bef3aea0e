"""Converters from the public datasets' original layouts to lightning_hmd clip and mocap shards.

Each converter module exposes ``NAME``, a docstring describing the source layout it expects,
and ``convert(src, out, **options) -> dict[str, Manifest]``. ``lightning-hmd data convert
NAME SRC --out DIR`` finds the module by ``NAME`` among the ``lightning_hmd.converters``
entry points, which ``pyproject.toml`` declares for the modules here.
"""
