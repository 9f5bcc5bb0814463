"""MACS3 mask: Seq2Exp's predictor fed the fixed binary mask of MACS3 peaks called on DNase
(`macs3 bdgpeakcall`, stored by `seq2exp build-data`) instead of a learned mask.

    seq2exp train --config experiments/macs3_mask.py --workdir runs/macs3_mask \
        --config.data.dir=tfds_data/geneexp/k562_200000/1.0.0

Reproduces (fold 11, CAGE, 5 seeds): K562 MSE 0.2195, Pearson 0.8435; GM12878 MSE 0.2340,
Pearson 0.8634.
"""

from seq2exp_jax.config import loader as configs


def get_config(arg=None):
  return configs.experiment(arg, "seq2exp", configs.seq2exp_args(arg),
                            mask={"source": "peaks"}, loss={"kl_weight": 0.0})
