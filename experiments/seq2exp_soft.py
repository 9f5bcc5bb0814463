"""Seq2Exp-soft: learned Beta mask, soft (mean) mask at test; the paper's main row
(docs/method.md, "The model" and "Two published variants").

    seq2exp train --config experiments/seq2exp_soft.py --workdir runs/seq2exp_soft \
        --config.data.dir=tfds_data/geneexp/k562_200000/1.0.0

Reproduces (fold 11, CAGE, mean of 5 seeds): K562 MSE 0.1856, Pearson 0.8723; GM12878 MSE
0.1873, Pearson 0.8951 (the GM12878 data set for --config.data.dir). Variants: `:smoke`
(CI, the tiny synthetic set), `:synthetic` (the CPU demo, `make demo`).
"""

from . import common


def get_config(arg=None):
  c = common.recipe(arg)
  # Width, blocks per backbone, state size, promoter: the same in every row of the table.
  d_model, layers, d_state, center_len = {
      "paper": (128, 4, 16, 2000), "synthetic": (16, 1, 8, 2000),
      "smoke": (16, 1, 4, 128)}[c.variant]
  c.model = common.model(
      name="seq2exp",
      # The original never sets n_layer, so out_proj is initialised for 64 layers.
      backbone=dict(kind="caduceus", d_model=d_model, d_state=d_state, init_n_layer=64),
      n_gen_layer=layers, n_enc_layer=layers, center_len=center_len,
      bottleneck=dict(prior_scale_factor=10.0, beta_min=1.0, marginal_mean=0.1,
                      marginal_scale=10.0, hard=False, threshold=0.5),
      share_generator=False, gen_signal=False, pos_enc=False, pack_selected=False)
  c.loss.kl_weight = 0.01
  return c
