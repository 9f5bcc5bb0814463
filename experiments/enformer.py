"""Enformer trained from scratch on the central 196,608 bp of the window, its embeddings
averaged over the 896 central bins, + mRNA features -> pToExpr (seq2exp_jax/model/enformer.py,
the original's GeneEnformer): the paper's Table 1 "Enformer" row.
    seq2exp train --config experiments/enformer.py --workdir runs/enformer \
        --config.data.dir=tfds_data/geneexp/k562_200000/1.0.0

`paper` mirrors the original's baselines.sh lines 10-29 ("# Enformer"): `model="Enformer"
model.config.use_pretrain=False dataset.batch_size=4 dataset.tokenizer_name=char
optimizer.lr=7e-6 trainer.max_steps=200000 scheduler.warmup_lr_init=0.0
scheduler.warmup_t=50000 scheduler.lr_min=7e-6`, on configs/experiment/hg38/gene_express.yaml
(experiments/common.py: AdamW betas (0.9, 0.95), weight decay 1e-6, clipping 1.0, bf16,
window 200,000, fold 11). The model is enformer-pytorch's `Enformer.from_hparams()`
defaults (config_enformer.py: dim 1536, depth 11, heads 8, key width 64, dropout 0.4 /
attention 0.05 / positional 0.01, 896 target bins, 7 downsamplings, widths divisible by
128) and configs/model/Enformer.yaml (d_model 128, useRNAFeat; its use_pretrain: True is
overridden by the script). The schedule is timm's CosineLRScheduler (cosine_warmup_timm,
warmup_prefix, t_initial = max_steps - warmup_t = 150,000, gene_express.yaml line 68): a
linear warm-up from 0 to 7e-6 over the first 50,000 of 200,000 steps, then a cosine from
7e-6 to lr_min 7e-6, i.e. constant. Here: init_lr 0, lr 7e-6, warmup_fraction 0.25, end_lr
7e-6: the same schedule (optax's cosine between equal values is constant). The char
tokenizer minus 7 gives indices A C G T N -> the one-hot the data set stores (N all zero).

Differences (model/enformer.py's docstring): per-example normalisation in place of
BatchNorm, the human/mouse output heads not built (never read by the original's loss).

`matched`: the paper model on the shared recipe (batch 8, AdamW lr 5e-4 from 1e-5, 50,000
steps: common.py); depth matching does not apply to a different architecture. `smoke`:
dim 48, 1 layer, 1,024 bp -> 8 bins, the central 4 pooled. `synthetic`: the 16,384 bp
window whole (128 bins), 74 central bins pooled (the original's 896/1536 of the bins,
rounded to an even trim), dim 96 (12-wide heads), 2 layers, key width 16, widths divisible
by 16; the shared synthetic recipe (lr 2e-3 from 1e-4) unchanged, as for every row.

Published for this row: the paper's Table 1 has an Enformer row (fold 11, CAGE), but its
number is not in docs/method.md's table and is not quoted here. `paper` is the run behind
it as the script sets it; it has not been run on the real data here, so what it reaches is
unknown.
"""

from . import common


def get_config(arg=None):
  c = common.recipe(arg)
  size = {  # dim, depth, heads, key width, widths divisible by, crop bp, target bins
      "paper": (1536, 11, 8, 64, 128, 196_608, 896),
      "matched": (1536, 11, 8, 64, 128, 196_608, 896),
      "synthetic": (96, 2, 8, 16, 16, 16_384, 74),
      "smoke": (48, 1, 2, 8, 8, 1024, 4)}[c.variant]
  dim, depth, heads, key, divisible_by, crop, target = size
  c.model = common.model(
      name="enformer", dim=dim, depth=depth, heads=heads, attn_dim_key=key,
      dropout_rate=0.4, attn_dropout=0.05, pos_dropout=0.01, target_length=target,
      num_downsamples=7, dim_divisible_by=divisible_by, crop=crop, d_model=128,
      use_rna_feat=True)
  if c.variant == "paper":  # baselines.sh lines 22-28
    c.train.update(batch_size=4, eval_batch_size=4, steps=200_000)
    c.optim.update(lr=7e-6, init_lr=0.0, end_lr=7e-6, warmup_fraction=0.25)
  return c
