"""HyenaDNA (Hyena operator: FFT long convolution with implicit filters), promoter pool +
mRNA-feature head: the paper's Table 1 "HyenaDNA" row (no published number in
docs/method.md, "Published numbers").
    seq2exp train --config experiments/hyena.py --workdir runs/hyena \
        --config.data.dir=tfds_data/geneexp/k562_200000/1.0.0

`paper` mirrors the original's baselines.sh lines 32-47 ("# hyena"):
`model=gene_express_hyena dataset.batch_size=8 dataset.seq_range=200_000 model.n_layer=4
dataset.tokenizer_name='char' train.single_CV=11`, on
configs/experiment/hg38/gene_express.yaml (experiments/common.py). So: 4 blocks, d_model
128, DNA alone (configs/model/gene_express_hyena.yaml line 27, `interact: no_signal`;
GeneExpHyena's forward passes only the tokens to its LMBackbone), batch 8, fold 11.

The yaml's settings against seq2exp_jax/model/hyena.py's `HyenaConfig`:
* d_model 128, n_layer 4 (lines 2-3): `d_model`, `n_layer`.
* d_inner 4 * d_model (line 4): `mlp_ratio=4`.
* emb_dim 5 (line 16): `emb_dim=5`; filter_order 64 (line 17): `filter_order=64`.
* order: not set, HyenaOperator's default 2: `order=2`; short_filter_order: not set,
  default 3: `short_filter_order=3` (`local_order: 3`, line 18, reaches no module: it falls
  into ExponentialModulation's **kwargs).
* modulate True (line 20): our filter always applies the exponential modulation.
* lr_pos_emb 0.0 (line 24): the positional features are a fixed buffer there; here they are
  recomputed and never trained: the same.
* lr = optimizer.lr (line 22): the filter MLP trains at the global rate, as here.
Differences (fields our model does not have):
* w 10 (line 21): the filter's Sin frequencies start at 10; ours start at 1 (HyenaFilter
  has `w`, but HyenaConfig does not set it).
* embed_dropout 0.1 (line 7): the original drops 10% of the embedding in training; ours
  has no dropout.
* wd 0.0 (line 23): no weight decay on the filter MLP there; here every parameter but
  A_log and D is decayed (1e-6).
* l_max = seq_range + 2 (line 19): the positional features there are for 200,002
  positions, cut to the 200,000 read (t = i / 200,001); ours are built for the window read
  (t = i / 199,999).
* the input: the original embeds 'char' tokens (vocab_size 12, line 5, padded to 16);
  ours is a Linear(4 -> D) with a bias on the one-hot DNA. On the letters the data holds
  (A, C, G, T, N, N all zeros here) the two are the same functions (row t = W[:, t] + b,
  N's row = b), not the same optimisation (another initialisation; the original exempts
  embeddings from weight decay; Adam is not invariant to that change of coordinates).

`matched`: 8 blocks (Seq2Exp's generator + predictor) reading DNA and the 3 signal tracks,
batch 8; `synthetic` and `smoke` are that comparison at their sizes (filter_order 16).
"""

from . import common


def get_config(arg=None):
  c = common.recipe(arg)
  # Width, blocks per backbone, state size, promoter: the same in every row of the table.
  d_model, layers, _, center_len = {
      "paper": (128, 4, 16, 2000), "matched": (128, 4, 16, 2000),
      "synthetic": (16, 1, 8, 2000), "smoke": (16, 1, 4, 128)}[c.variant]
  as_run = c.variant == "paper"  # baselines.sh: 4 blocks, DNA only, batch 8 (the recipe's)
  paper_size = c.variant in ("paper", "matched")
  c.model = common.model(
      name="baseline",
      # HyenaConfig's defaults are the yaml's: short_filter_order 3, emb_dim 5, mlp_ratio 4.
      backbone=dict(kind="hyena", d_model=d_model, order=2,
                    filter_order=64 if paper_size else 16),
      # Otherwise 2 * layers blocks: the depth of Seq2Exp's generator + predictor.
      n_layer=layers if as_run else 2 * layers, center_len=center_len,
      use_signals=not as_run)
  return c
