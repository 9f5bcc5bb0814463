"""Caduceus with signals and the contact-weighted head (a named option, not in the paper):
the same head `seq2exp_soft_contact.py` gets (promoter mean + hidden states outside the
promoter weighted by Hi-C contact; there is no mask), so no row wins by its head.
Everything else is `caduceus_signals.py`, in every variant. Ours: no script or option
of the original corresponds to it.

    seq2exp train --config experiments/caduceus_signals_contact.py:synthetic \
        --workdir runs/caduceus_signals_contact --config.data.dir=DATA_DIR
"""

from . import caduceus_signals


def get_config(arg=None):
  c = caduceus_signals.get_config(arg)
  c.model.pool = "centre+contact"  # the one change
  return c
