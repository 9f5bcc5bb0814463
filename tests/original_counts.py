"""Trainable-parameter counts of the original PyTorch models, from their module structure
(mamba-ssm Mamba, Caduceus BiMambaWrapper with weight tie, GeneBiMambaMIRNP,
GeneExpBiMamba); checked against the golden files' own parameters in
tests/torch_port/test_golden.py and used for the paper-size configs in
tests/config/test_configs.py."""

import math

SIGNALS, RNA_FEATURES = 3, 9


def bimamba_layer(d: int, n: int = 16, k: int = 4, expand: int = 2) -> int:
  """One Caduceus block: tied in_proj/out_proj, per-direction conv, x_proj, dt_proj, A_log,
  D, and the block's RMSNorm."""
  e, r = expand * d, math.ceil(d / 16)
  per_direction = e * k + e + e * (r + 2 * n) + r * e + e + e * n + e
  return d * 2 * e + e * d + 2 * per_direction + d


def head(d: int) -> int:
  """pToExpr: (D + F) -> D -> D -> 1 with biases."""
  return (d + RNA_FEATURES) * d + d + d * d + d + d + 1


def seq2exp(d: int, n_gen: int, n_enc: int) -> int:
  """Seq2Exp-soft: input Linears, generator and encoder backbones (with norm_f), the mask
  Linear and the head; prior_weights and signal_betas are frozen, not counted."""
  backbone = lambda n: n * bimamba_layer(d) + d  # noqa: E731
  return ((4 * d + d) + (SIGNALS * d + d) + backbone(n_gen) + (d * 2 + 2) + backbone(n_enc)
          + head(d))


def geneexp(d: int, n_layer: int) -> int:
  """Caduceus with signals: Linear(4 + S -> D), the backbone, the head."""
  return (4 + SIGNALS) * d + d + n_layer * bimamba_layer(d) + d + head(d)
