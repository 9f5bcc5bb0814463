"""Baselines with Seq2Exp's head: a backbone over the whole window, then centre pool ->
concat mRNA features -> MLP.

* Caduceus with signals: the original `GeneExpBiMamba` (one-hot and signals concatenated,
  then Linear(4 + S -> D)); param names `input_layer`, `caduceus/...`, `pToExpr/...`.
* Caduceus without signals: the same on one-hot DNA alone.
* Mamba: unidirectional Mamba blocks (`mamba/...`).
* Hyena: HyenaDNA blocks (`hyena/...`).

The fixed-mask baselines (MACS3 peaks; top-k of a trained generator) are Seq2Exp's own
predictor with `mask_source="input"` (see `seq2exp.py`).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from seq2exp_jax.model import scan as scan_lib
from seq2exp_jax.model.caduceus import Caduceus
from seq2exp_jax.model.heads import ExpressionHead, centre_mean, embedding_dense
from seq2exp_jax.model.hyena import HyenaBackbone

Dtype = Any
BACKBONES = ("caduceus", "mamba", "hyena")


class GeneExpModel(nn.Module):
  """Backbone + expression head. `use_signals=False` reads DNA only."""

  backbone: str = "caduceus"
  use_signals: bool = True
  d_model: int = 128
  n_layer: int = 4
  center_len: int = 2000
  d_state: int = 16
  norm_epsilon: float = 1e-5
  hyena_order: int = 2
  hyena_filter_order: int = 64
  scan_method: str = "chunked"
  chunk_size: int = scan_lib.DEFAULT_CHUNK_SIZE
  remat: bool = False
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, dna, signals, rna_feat):
    """dna: (B, L, 4); signals: (B, L, S) (ignored without use_signals); rna_feat: (B, F).

    Returns prediction (B, 1) float32.
    """
    x = jnp.concatenate([dna, signals.astype(dna.dtype)], -1) if self.use_signals else dna
    x = embedding_dense(self.d_model, self.dtype, "input_layer")(x)
    if self.backbone in ("caduceus", "mamba"):
      hidden = Caduceus(
          d_model=self.d_model, n_layer=self.n_layer,
          mixer="bimamba" if self.backbone == "caduceus" else "mamba", d_state=self.d_state,
          norm_epsilon=self.norm_epsilon, scan_method=self.scan_method,
          chunk_size=self.chunk_size, remat=self.remat, dtype=self.dtype,
          name=self.backbone)(x)
    elif self.backbone == "hyena":
      hidden = HyenaBackbone(d_model=self.d_model, n_layer=self.n_layer,
                             order=self.hyena_order, filter_order=self.hyena_filter_order,
                             remat=self.remat, dtype=self.dtype, name="hyena")(x)
    else:
      raise ValueError(f"unknown backbone {self.backbone!r}: expected one of {BACKBONES}")
    return ExpressionHead(self.d_model, dtype=self.dtype, name="pToExpr")(
        centre_mean(hidden, self.center_len), rna_feat)
