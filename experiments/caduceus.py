"""Caduceus (BiMamba) on one-hot DNA alone, centre pool + mRNA-feature head.

    seq2exp train --config experiments/caduceus.py --workdir runs/caduceus \
        --config.data.dir=tfds_data/geneexp/k562_200000/1.0.0

The paper's Table 1 row "Caduceus" (SPEC §3 lists only the with-signals row); depth =
Seq2Exp's generator + predictor (8 blocks at paper size).
"""

from seq2exp_jax.config import loader as configs


def get_config(arg=None):
  return configs.experiment(arg, "baseline", configs.baseline_args(arg, "caduceus", False),
                            loss={"kl_weight": 0.0})
