"""``python -m lightning_hmd`` is the ``lightning-hmd`` command."""

from lightning_hmd.commands import main

if __name__ == "__main__":
    raise SystemExit(main())
