"""HyenaDNA (Hyena operator: FFT long convolution with implicit filters) with signals,
centre pool + mRNA-feature head.

    seq2exp train --config experiments/hyena.py --workdir runs/hyena \
        --config.data.dir=tfds_data/geneexp/k562_200000/1.0.0

The paper's Table 1 "HyenaDNA" row (not listed in SPEC §3).
"""

from seq2exp_jax.config import loader as configs


def get_config(arg=None):
  args = configs.baseline_args(arg, "hyena", True)
  del args["d_state"]
  args.update(hyena_order=2, hyena_filter_order=64 if arg in (None, "paper") else 16)
  return configs.experiment(arg, "baseline", args, loss={"kl_weight": 0.0})
