"""Mamba (unidirectional) with signals, promoter pool + mRNA-feature head.

    seq2exp train --config experiments/mamba.py --workdir runs/mamba \
        --config.data.dir=tfds_data/geneexp/k562_200000/1.0.0

The paper's Table 1 "Mamba" row (no number in docs/method.md, "Published numbers").
"""

from . import common


def get_config(arg=None):
  c = common.recipe(arg)
  # Width, blocks per backbone, state size, promoter: the same in every row of the table.
  d_model, layers, d_state, center_len = {
      "paper": (128, 4, 16, 2000), "synthetic": (16, 1, 8, 2000),
      "smoke": (16, 1, 4, 128)}[c.variant]
  # Baselines get 2 * layers blocks: the depth of Seq2Exp's generator + predictor.
  c.model = common.model(
      name="baseline",
      backbone=dict(kind="mamba", d_model=d_model, d_state=d_state),
      n_layer=2 * layers, center_len=center_len, use_signals=True)
  return c
