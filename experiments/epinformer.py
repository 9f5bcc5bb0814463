"""EPInformer: the promoter and up to 60 candidate elements (2 kb each, with distance,
log10 contact and activity), a convolutional encoder per sequence, attention through the
promoter, then the mRNA-feature head (seq2exp_jax/model/epinformer.py): the paper's Table 1
"EPInformer" row.
    seq2exp train --config experiments/epinformer.py --workdir runs/epinformer \
        --config.data.dir=tfds_data/geneexp/k562_200000/1.0.0

The data set must store the candidate elements (`seq2exp build-data` does: Batch.element_*).

`paper` mirrors the original's baselines.sh lines 101-111 ("# EPInformer":
`experiment=hg38/CAGE_pred_promo_enhan_inter dataset.expr_type=CAGE dataset.n_extraFeat=3`).
That experiment (configs/experiment/hg38/CAGE_pred_promo_enhan_inter.yaml) runs EPInformer_v2
(configs/model/CAGE_promo_enhan.yaml: useBN, useFeat, useLN True; usePromoterSignal True,
line 30) with n_encoder 3, out_dim 64, head 4 (lines 48-50) and 60 enhancers
(configs/dataset/promo_enhan_inter.yaml line 9), on its own recipe rather than
gene_express.yaml's: AdamW lr 5e-4, weight decay 1e-6, betas (0.9, 0.95) (lines 55-57) at a
constant rate (line 6, `override /scheduler: constant`: no warm-up, no decay), batch 16
(line 37), clipping 1.0 (21), smooth L1 (11), 20 epochs (18) of fold 11's ~15,985 training
genes = 20,000 steps at batch 16, validated once an epoch (25: every 1,000 steps), the model
kept on validation MSE (65); precision 16 (20; bf16 here). The model reads no per-base
track; the elements come from the data set whatever data.window is.

Published for this row (Seq2Exp paper, Table 1, fold 11, CAGE): K562 MSE 0.2140, Pearson
0.8473. `paper` is the run behind those numbers as the script sets it; it has not been run
on the real data here, so whether it reaches them is unknown. BatchNorm is replaced by a
per-element norm (model/epinformer.py docstring; same parameter count, 447,341).

`matched`: the paper's model on the shared recipe (experiments/common.py: batch 8, warm-up
and cosine, 50,000 steps), as every row's `matched` is. `synthetic` keeps the shared
synthetic recipe (lr 2e-3: nothing in this row's recipe is structurally different) and the
paper's attention part (out_dim 64, 3 layers, 4 heads, head 128) and narrows the
convolutions (stem 32 channels, stages 32-16-16-32, conv_out 16-16-16-8; the original's
256, 128-64-64-128, 64-64-64-32) so a step of batch 8 costs about what seq2exp_soft's does
on 2 CPU cores (1.3x, measured on the same arrays). `smoke` is a tiny one for CI.
"""

from . import common


def get_config(arg=None):
  c = common.recipe(arg)
  size = {
      "paper": {}, "matched": {},  # the model's defaults: EPInformer_v2 as run
      "synthetic": dict(stem_width=32, tower_widths=(32, 16, 16, 32),
                        out_widths=(16, 16, 16, 8)),
      "smoke": dict(out_dim=16, n_encoder=1, heads=2, stem_width=8, tower_widths=(8, 8),
                    out_widths=(8, 8), head_width=16),
  }[c.variant]
  c.model = common.model(name="epinformer", center_len=2000, **size)
  if c.variant == "paper":  # CAGE_pred_promo_enhan_inter.yaml's own recipe (see above)
    c.optim.update(lr=5e-4, weight_decay=1e-6, b1=0.9, b2=0.95, grad_clip=1.0,
                   warmup_fraction=0.0, init_lr=5e-4, end_lr=5e-4)  # constant
    c.train.update(steps=20_000, batch_size=16, eval_batch_size=16, eval_every=1_000)
  return c
