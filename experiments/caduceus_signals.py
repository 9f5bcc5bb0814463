"""Caduceus with signals: one-hot DNA and the 3 signal tracks concatenated, then Linear, 8
BiMamba blocks, centre pool + mRNA-feature head (the original GeneExpBiMamba).

    seq2exp train --config experiments/caduceus_signals.py --workdir runs/caduceus_signals \
        --config.data.dir=tfds_data/geneexp/k562_200000/1.0.0

Reproduces (fold 11, CAGE, 5 seeds): K562 MSE 0.1959, Pearson 0.8630; GM12878 MSE 0.1942,
Pearson 0.8928.
"""

from seq2exp_jax.config import loader as configs


def get_config(arg=None):
  return configs.experiment(arg, "baseline", configs.baseline_args(arg, "caduceus", True),
                            loss={"kl_weight": 0.0})
