"""Caduceus with signals: one-hot DNA and the 3 signal tracks concatenated, then
Linear(4 + 3 -> D), BiMamba blocks, promoter pool + mRNA-feature head (the original
GeneExpBiMamba): the paper's Table 1 "Caduceus w/ signals" row.
    seq2exp train --config experiments/caduceus_signals.py --workdir runs/caduceus_signals \
        --config.data.dir=tfds_data/geneexp/k562_200000/1.0.0

`paper` mirrors the original's baselines.sh lines 86-98 ("# caduceus with signals"):
`model=gene_express_bi_mamba dataset.batch_size=16 model.config.n_layer=4`, on
configs/experiment/hg38/gene_express.yaml (experiments/common.py). So: 4 blocks (the yaml's
8, configs/model/gene_express_bi_mamba.yaml line 7, overridden), d_model 128 (line 6),
d_state 16 (line 22), signals concatenated (`interact: concat`, line 8), batch 16. The
script sets neither seq_range nor single_CV: gene_express.yaml's seq_range 200_000 (line
45) and configs/config.yaml's `single_CV: 11` (line 55) apply, and train.py runs fold 11
alone (it loops over `num_fold_CV` folds only when single_CV is unset or 0), as for the
other rows.

Published for this row (fold 11, CAGE, mean of 5 seeds): K562 MSE 0.1959, Pearson 0.8630;
GM12878 MSE 0.1942, Pearson 0.8928. `paper` is the run behind those numbers as the script
sets it; it has not been run on the real data here, so whether it reaches them is unknown.

`matched`: 8 blocks (Seq2Exp's generator + predictor), batch 8; `synthetic` and `smoke` are
that comparison at their sizes.
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
      n_layer=layers if as_run else 2 * layers, center_len=center_len, use_signals=True)
  if as_run:
    c.train.update(batch_size=16, eval_batch_size=16)  # eval: batch_size_eval = batch_size
  return c
