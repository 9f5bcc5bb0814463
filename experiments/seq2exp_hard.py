"""Seq2Exp-hard: straight-through hard mask, generator = predictor, learned position
embedding, predictor on the selected positions only (SPEC §2, the published hard run).

    seq2exp train --config experiments/seq2exp_hard.py --workdir runs/seq2exp_hard \
        --config.data.dir=tfds_data/geneexp/k562_200000/1.0.0

Reproduces (fold 11, CAGE, 5 seeds): K562 MSE 0.1863, Pearson 0.8682; GM12878 MSE 0.1890,
Pearson 0.8916.
"""

from seq2exp_jax.config import loader as configs


def get_config(arg=None):
  args = configs.seq2exp_args(arg)
  args.update(prior_scale_factor=1.0, beta_min=0.0, marginal_mean=0.45, marginal_scale=0.1,
              threshold=0.5, hard=True, share_generator=True, pos_enc=True)
  c = configs.experiment(arg, "seq2exp", args)
  # The position embedding spans the window the model reads.
  c.model.args.seq_range = c.data.window or (200_000 if c.variant == "paper" else 16_384)
  return c
