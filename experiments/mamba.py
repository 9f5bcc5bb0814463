"""Mamba (unidirectional) with signals, centre pool + mRNA-feature head.

    seq2exp train --config experiments/mamba.py --workdir runs/mamba \
        --config.data.dir=tfds_data/geneexp/k562_200000/1.0.0

The paper's Table 1 "Mamba" row (not listed in SPEC §3).
"""

from seq2exp_jax.config import loader as configs


def get_config(arg=None):
  return configs.experiment(arg, "baseline", configs.baseline_args(arg, "mamba", True),
                            loss={"kl_weight": 0.0})
