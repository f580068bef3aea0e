"""``python -m lightning_hmd`` is the ``lightning-hmd`` command."""

from lightning_hmd.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
