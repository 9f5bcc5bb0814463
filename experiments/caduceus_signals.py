"""Caduceus with signals: one-hot DNA and the 3 signal tracks concatenated, then Linear, 8
BiMamba blocks, promoter pool + mRNA-feature head (the original GeneExpBiMamba).

    seq2exp train --config experiments/caduceus_signals.py --workdir runs/caduceus_signals \
        --config.data.dir=tfds_data/geneexp/k562_200000/1.0.0

Reproduces (fold 11, CAGE, 5 seeds): K562 MSE 0.1959, Pearson 0.8630; GM12878 MSE 0.1942,
Pearson 0.8928.
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
      backbone=dict(kind="caduceus", d_model=d_model, d_state=d_state),
      n_layer=2 * layers, center_len=center_len, use_signals=True)
  return c
