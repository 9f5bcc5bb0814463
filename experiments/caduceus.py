"""Caduceus (weight-tied BiMamba blocks) on one-hot DNA alone, promoter pool + mRNA-feature
head: the paper's Table 1 "Caduceus" row (docs/method.md, "Published numbers", lists only
the with-signals row).
    seq2exp train --config experiments/caduceus.py --workdir runs/caduceus \
        --config.data.dir=tfds_data/geneexp/k562_200000/1.0.0

`paper` mirrors the original's baselines.sh lines 68-83 ("# caduceus"):
`model=gene_express_bi_mamba dataset.batch_size=16 dataset.seq_range=200_000
model.config.n_layer=4 train.single_CV=11 model.config.interact=no_signal`, on
configs/experiment/hg38/gene_express.yaml (experiments/common.py). So: GeneExpBiMamba with
Linear(4 -> D) on the one-hot DNA (`interact=no_signal`; the default tokenizer one_hot,
gene_express.yaml line 46), 4 blocks (the yaml's 8, configs/model/gene_express_bi_mamba.yaml
line 7, overridden), d_model 128 (line 6), d_state 16 (line 22), batch 16, fold 11.

`matched`: 8 blocks (Seq2Exp's generator + predictor), batch 8; `synthetic` and `smoke` are
that comparison at their sizes. Every variant reads DNA alone.
"""

from . import common


def get_config(arg=None):
  c = common.recipe(arg)
  # Width, blocks per backbone, state size, promoter: the same in every row of the table.
  d_model, layers, d_state, center_len = {
      "paper": (128, 4, 16, 2000), "matched": (128, 4, 16, 2000),
      "synthetic": (16, 1, 8, 2000), "smoke": (16, 1, 4, 128)}[c.variant]
  as_run = c.variant == "paper"  # baselines.sh: 4 blocks, batch 16
  c.model = common.model(
      name="baseline",
      backbone=dict(kind="caduceus", d_model=d_model, d_state=d_state),
      # Otherwise 2 * layers blocks: the depth of Seq2Exp's generator + predictor.
      n_layer=layers if as_run else 2 * layers, center_len=center_len, use_signals=False)
  if as_run:
    c.train.update(batch_size=16, eval_batch_size=16)  # eval: batch_size_eval = batch_size
  return c
