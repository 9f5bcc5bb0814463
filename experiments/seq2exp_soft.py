"""Seq2Exp-soft: learned Beta mask, soft (mean) mask at test (SPEC §2, the paper's main row).

    seq2exp train --config experiments/seq2exp_soft.py --workdir runs/seq2exp_soft \
        --config.data.dir=tfds_data/geneexp/k562_200000/1.0.0

Reproduces (fold 11, CAGE, mean of 5 seeds): K562 MSE 0.1856, Pearson 0.8723; GM12878 MSE
0.1873, Pearson 0.8951 (the GM12878 data set for --config.data.dir). Variants: `:smoke`
(CI, one step on the tiny synthetic set), `:synthetic` (the CPU demo, `make demo`).
"""

from seq2exp_jax.config import loader as configs


def get_config(arg=None):
  return configs.experiment(arg, "seq2exp", configs.seq2exp_args(arg))
