"""The `seq2exp` console script; the sub-commands live in `seq2exp_jax/commands/`."""

import sys

from seq2exp_jax.commands.dispatch import main

__all__ = ["main"]

if __name__ == "__main__":
  sys.exit(main())
