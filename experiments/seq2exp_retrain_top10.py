"""Predictor retrained on the top 10% of a trained Seq2Exp-soft generator's soft mask (the
paper's ablation of the learned mask as a fixed input).

    seq2exp train --config experiments/seq2exp_retrain_top10.py --workdir runs/top10 \
        --config.data.dir=tfds_data/geneexp/k562_200000/1.0.0 \
        --config.mask.generator_workdir=runs/seq2exp_soft

`seq2exp ablate` fills mask.generator_workdir with the same seed's seq2exp_soft run. The
paper reports this ablation in its analysis section; SPEC §3 gives no number for it.
"""

from seq2exp_jax.config import loader as configs


def get_config(arg=None):
  return configs.experiment(arg, "seq2exp", configs.seq2exp_args(arg),
                            mask={"source": "generator_top", "top_fraction": 0.1},
                            loss={"kl_weight": 0.0})
