"""MACS3 mask: Seq2Exp's predictor fed the fixed binary mask of MACS3 peaks called on DNase
(`macs3 bdgpeakcall`, stored by `seq2exp build-data`) instead of a learned mask.

    seq2exp train --config experiments/macs3_mask.py --workdir runs/macs3_mask \
        --config.data.dir=tfds_data/geneexp/k562_200000/1.0.0

No script of the original runs this row. Its code has it as an option of Seq2Exp's model,
`model.config.use_peak_mask=True` on gene_express_bimamba_MI_RNP (configs/model/
gene_express_bimamba_MI_RNP.yaml line 55; GeneBiMambaMIRNP then builds no generator and
uses the batch's peak mask as the mask) with the recipe of gene_express.yaml (batch 8)
and the yaml's d_model 128, 4 predictor blocks, d_state 16. The original reads its peaks
from a prepared `DNase-seq/<cell>/peaks/peaks_bigWig/macs3.bigWig`
(src/dataloaders/datasets/promo_enhan_inter.py, line 403) whose MACS3 call is not in its
code; ours are `seq2exp build-data`'s (README, "Data").

Published (fold 11, CAGE, 5 seeds): K562 MSE 0.2195, Pearson 0.8435; GM12878 MSE 0.2340,
Pearson 0.8634; not run on the real data here. `matched` is `paper`.
"""

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
      bottleneck=None,  # no generator: the mask is given
      pos_enc=False, pack_selected=False)
  c.mask.source = "peaks"
  return c
