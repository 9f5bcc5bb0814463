"""Seq2Exp-hard: straight-through hard mask, generator = predictor, learned position
embedding, predictor on the selected positions only (docs/method.md, "Two published
variants").

    seq2exp train --config experiments/seq2exp_hard.py --workdir runs/seq2exp_hard \
        --config.data.dir=tfds_data/geneexp/k562_200000/1.0.0

`paper` mirrors the original's Seq2Exp.sh lines 29-53 ("# Seq2Exp-hard"):
`train.single_CV=11 model=gene_express_bimamba_MI_RNP task=extract_rationale
task.loss.kl_loss_weight=0.01 model.config.prior_scale_factor=1.0 model.config.beta_min=0
model.config.marginal_mean=0.45 model.config.marginal_scale=0.1 model.config.z_scale=1.0
model.config.test_soft=False model.config.test_hard=True model.config.post_hard_dist=True
model.config.enc_prd_ps=True model.config.pos_enc=True model.config.sample_threshold=0.5`
(`enc_prd_ps`: `share_generator`; `post_hard_dist`/`test_hard`: `hard`), on the recipe of
gene_express.yaml (batch 8) and the MI_RNP yaml's d_model 128, 4 blocks, d_state 16.

Published (fold 11, CAGE, 5 seeds): K562 MSE 0.1863, Pearson 0.8682; GM12878 MSE 0.1890,
Pearson 0.8916; not run on the real data here. `matched` is `paper`. The position
embedding spans the window the model reads (data.window, or the stored window), whatever
the command line sets it to.

Not the original's: `inert_padding` (the packed predictor never reads the padding after a
sample's selected positions; the original pads to the batch's longest selection and its
bidirectional encoder reads that padding, so its outputs depend on the other samples) and
`packing.capacity = "auto"` (the predictor computes a capacity derived from the counts of
recent steps instead of the window, seq2exp_jax/train/capacity.py; "window" or a number
of positions fixes it; evaluation packs to the window). With inert padding a capacity at or
above a sample's count gives the same numbers as the window.
"""

import ml_collections

from . import common


def get_config(arg=None):
  c = common.recipe(arg)
  # Width, blocks per backbone, state size, promoter: the same in every row of the table.
  d_model, layers, d_state, center_len = {
      "paper": (128, 4, 16, 2000), "matched": (128, 4, 16, 2000),
      "synthetic": (16, 1, 8, 2000), "smoke": (16, 1, 4, 128)}[c.variant]
  c.model = common.model(
      name="seq2exp",
      backbone=dict(kind="caduceus", d_model=d_model, d_state=d_state, init_n_layer=64),
      n_gen_layer=layers, n_enc_layer=layers, center_len=center_len,
      bottleneck=dict(prior_scale_factor=1.0, beta_min=0.0, marginal_mean=0.45,
                      marginal_scale=0.1, hard=True, threshold=0.5),
      share_generator=True, gen_signal=False, pos_enc=True, pack_selected=True,
      inert_padding=True)
  c.loss.kl_weight = 0.01
  c.packing = ml_collections.ConfigDict({"capacity": "auto"})
  return c
