"""Seq2Exp-soft with the contact-weighted head (a named option, not in the paper): the head
reads the promoter mean and, concatenated, the predictor's hidden states outside the
promoter weighted by mask x Hi-C contact (`model.pool="centre+contact"`), so distal
positions reach the prediction without crossing the SSM's memory (docs/benchmark.md,
"Diagnosis"). Everything else is `seq2exp_soft.py`, in every variant. Ours: no script or option
of the original corresponds to it.

    seq2exp train --config experiments/seq2exp_soft_contact.py:synthetic \
        --workdir runs/seq2exp_soft_contact --config.data.dir=DATA_DIR
"""

from . import seq2exp_soft


def get_config(arg=None):
  c = seq2exp_soft.get_config(arg)
  c.model.pool = "centre+contact"  # the one change
  return c
