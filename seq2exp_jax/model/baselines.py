"""Baselines with Seq2Exp's head: a backbone over the whole window, then promoter pool ->
concat mRNA features -> MLP.

* Caduceus with signals: the original `GeneExpBiMamba` (one-hot and signals concatenated,
  then Linear(4 + S -> D)); param names `input_layer`, `caduceus/...`, `pToExpr/...`.
* Caduceus without signals: the same on one-hot DNA alone.
* Mamba: unidirectional Mamba blocks (`mamba/...`); Hyena: HyenaDNA blocks (`hyena/...`).

The backbone's params sit under its kind's name. The fixed-mask baselines (MACS3 peaks; the
top of a trained generator's mask) are Seq2Exp's own predictor with `bottleneck=None`.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from seq2exp_jax.model.backbones import BackboneConfig, build_backbone
from seq2exp_jax.model.heads import ExpressionHead
from seq2exp_jax.model.layers import input_dense, transform_signals
from seq2exp_jax.model.outputs import ModelOutput
from seq2exp_jax.model.pooling import POOLS, WindowPool
from seq2exp_jax.model.ssm_config import SSMConfig


class GeneExpModel(nn.Module):
  """Backbone + expression head. `use_signals=False` reads DNA only. `pool`,
  `signal_transform`, `motif_stem` and `use_rna_feat` as Seq2Exp's ("centre+contact" and "centre+abc"
  weight the hidden states by Hi-C contact alone): the options a Seq2Exp gets, so no row wins by its
  head, its input scaling or its DNA stem."""

  backbone: BackboneConfig = SSMConfig()
  n_layer: int = 4
  center_len: int = 2000
  use_signals: bool = True
  pool: str = "centre"
  contact_track: int = 2
  signal_transform: str = "none"
  motif_stem: int = 0
  use_rna_feat: bool = True  # the original's useRNAFeat

  def __post_init__(self):
    if self.n_layer < 1 or self.center_len < 1:
      raise ValueError(f"GeneExpModel: n_layer={self.n_layer}, center_len={self.center_len}: "
                       "expected >= 1")
    if self.pool not in POOLS:
      raise ValueError(f"GeneExpModel: pool={self.pool!r}: expected one of {POOLS}")
    super().__post_init__()

  @property
  def extra_inputs(self) -> tuple[str, ...]:
    """Batch fields beyond dna, signals, rna_feat and blacklist: none."""
    return ()

  @nn.compact
  def __call__(self, dna: Float[Array, "B L 4"], signals: Float[Array, "B L S"],
               rna_feat: Float[Array, "B F"], blacklist: Bool[Array, "B L"] | None = None, *,
               train: bool = False, mask: Float[Array, "B L"] | None = None) -> ModelOutput:
    """The same call as Seq2Exp's. `blacklist` and `train` change nothing (no mask, no
    randomness); `signals` are read only with `use_signals`; a fixed `mask` is refused."""
    del blacklist, train
    if mask is not None:
      raise ValueError("GeneExpModel reads the whole window: it takes no mask")
    c = self.backbone
    read = transform_signals(signals, self.signal_transform, self.contact_track)
    x = jnp.concatenate([dna, read.astype(dna.dtype)], -1) if self.use_signals else dna
    x = input_dense(c.d_model, c.dtype, "input_layer")(x)
    if self.motif_stem:  # the same DNA convolution a Seq2Exp with this option gets
      x = x + nn.Conv(c.d_model, (self.motif_stem,), padding="SAME", dtype=c.dtype,
                      name="motif_stem")(dna)
    hidden = build_backbone(c, self.n_layer, c.kind)(x)
    pooled = WindowPool(self.pool, self.center_len, self.contact_track, name="pool")(
        hidden, signals, None)
    head = ExpressionHead(c.d_model, dtype=c.dtype, use_rna_feat=self.use_rna_feat,
                          name="pToExpr")
    return ModelOutput.unmasked(head(pooled, rna_feat))
