"""Mamba (unidirectional Mamba blocks), promoter pool + mRNA-feature head: the paper's
Table 1 "Mamba" row (no published number in docs/method.md, "Published numbers").
    seq2exp train --config experiments/mamba.py --workdir runs/mamba \
        --config.data.dir=tfds_data/geneexp/k562_200000/1.0.0

`paper` mirrors the original's baselines.sh lines 50-65 ("# mamba"):
`model=gene_express_mamba dataset.batch_size=16 dataset.seq_range=200_000
model.config.n_layer=4 dataset.tokenizer_name='char' train.single_CV=11`, on
configs/experiment/hg38/gene_express.yaml (the shared recipe, experiments/common.py). So:
4 blocks, d_model 128, d_state 16 (configs/model/gene_express_mamba.yaml lines 13-14, 21),
DNA alone (`interact: no_signal`, line 5; GeneExpMamba's forward reads only the tokens:
src/models/sequence/GeneExpformer.py, `self.model(input_ids=seqs)`), batch 16, fold 11.

The original embeds 'char' tokens (vocab 12, padded to 16) with an nn.Embedding; here a
Linear(4 -> D) with a bias reads the one-hot DNA. On the five letters the data holds
(A, C, G, T, N; N is all zeros here) the two are the same functions: row t of the table is
W[:, t] + b and N's row is b (b = E[N], W[:, t] = E[t] - E[N]). They are not the same
optimisation: the initialisation differs (N(0, 0.02) rows against a kaiming-uniform kernel
and a zero bias), the original exempts embeddings from weight decay, and Adam is not
invariant to that change of coordinates.

`matched`: 8 blocks (Seq2Exp's generator + predictor) reading DNA and the 3 signal tracks,
batch 8; `synthetic` and `smoke` are that comparison at their sizes.
"""

from . import common


def get_config(arg=None):
  c = common.recipe(arg)
  # Width, blocks per backbone, state size, promoter: the same in every row of the table.
  d_model, layers, d_state, center_len = {
      "paper": (128, 4, 16, 2000), "matched": (128, 4, 16, 2000),
      "synthetic": (16, 1, 8, 2000), "smoke": (16, 1, 4, 128)}[c.variant]
  as_run = c.variant == "paper"  # baselines.sh: 4 blocks, DNA only, batch 16
  c.model = common.model(
      name="baseline",
      backbone=dict(kind="mamba", d_model=d_model, d_state=d_state),
      # Otherwise 2 * layers blocks: the depth of Seq2Exp's generator + predictor.
      n_layer=layers if as_run else 2 * layers, center_len=center_len,
      use_signals=not as_run)
  if as_run:
    c.train.update(batch_size=16, eval_batch_size=16)  # eval: batch_size_eval = batch_size
  return c
