"""The Caduceus backbone (and its unidirectional-Mamba twin): pre-norm residual blocks.

    residual = h (first block) or h + residual;  h = mixer_i(RMSNorm_i(residual))
    out = RMSNorm_f(h + residual)

The input embeddings enter the residual stream unnormalised; every block's norm sits in
front of its mixer (mamba-ssm's "Add -> Norm -> Mixer" with the residual carried alongside).
Here the carried value is the sum s_i = h_{i-1} + residual_{i-1}: s_1 = embeddings,
s_{i+1} = s_i + mixer_i(RMSNorm_i(s_i)), out = RMSNorm_f(s_{n+1}).
Param names: `layers/norm/scale`, `layers/mixer/...` (stacked over layers), `norm_f/scale`.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from seq2exp_jax.model import mamba as mamba_lib
from seq2exp_jax.model import scan as scan_lib

Dtype = Any
MIXERS = {"bimamba": mamba_lib.BiMamba, "mamba": mamba_lib.Mamba}


class Block(nn.Module):
  """One pre-norm residual block on the residual stream: s -> s + mixer(RMSNorm(s)).

  The original carries (hidden, residual) and adds them at the next block; carrying their
  sum instead is the same arithmetic (IEEE addition commutes) and keeps one (B, L, D) array
  per layer for the backward pass instead of two.
  """

  mixer: str
  d_model: int
  d_state: int = 16
  d_conv: int = 4
  expand: int = 2
  norm_epsilon: float = 1e-5
  out_proj_scale: float = 1.0
  scan_method: str = "chunked"
  chunk_size: int = scan_lib.DEFAULT_CHUNK_SIZE
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, residual, _=None):
    """residual: (B, L, D) -> (next residual (B, L, D), None) (the scan form)."""
    normed = nn.RMSNorm(epsilon=self.norm_epsilon, dtype=self.dtype, name="norm")(residual)
    mixer = MIXERS[self.mixer](
        d_model=self.d_model, d_state=self.d_state, d_conv=self.d_conv, expand=self.expand,
        out_proj_scale=self.out_proj_scale, scan_method=self.scan_method,
        chunk_size=self.chunk_size, dtype=self.dtype, name="mixer")
    return mixer(normed) + residual, None


class Caduceus(nn.Module):
  """A stack of `n_layer` blocks with the final add + RMSNorm.

  Attributes:
    mixer: "bimamba" (Caduceus, weight-tied bidirectional) or "mamba" (unidirectional).
    init_n_layer: the n_layer that mamba-ssm's init divides out_proj by (sqrt of it). The
      Seq2Exp yaml never sets it, so the original used CaduceusConfig's default 64 there;
      None means `n_layer`.
    remat: rematerialise each block in the backward pass (memory O(L D) per block instead of
      every intermediate; needed for 200 kb windows).

  The blocks run as one `nn.scan` over layers, with params stacked on a leading layer axis
  (`layers/...`, shape (n_layer, ...)): the backward pass then walks the layers one at a
  time, so with remat only one block's intermediates are ever live (with the layers
  unrolled, XLA:CPU's scheduler recomputes every block's forward up front and keeps them
  all), and the block compiles once.
  """

  d_model: int
  n_layer: int
  mixer: str = "bimamba"
  d_state: int = 16
  d_conv: int = 4
  expand: int = 2
  norm_epsilon: float = 1e-5
  init_n_layer: int | None = None
  n_residuals_per_layer: int = 1
  scan_method: str = "chunked"
  chunk_size: int = scan_lib.DEFAULT_CHUNK_SIZE
  remat: bool = False
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, embeddings):
    """embeddings: (B, L, D) -> (B, L, D)."""
    if self.mixer not in MIXERS:
      raise ValueError(f"unknown mixer {self.mixer!r}: expected one of {sorted(MIXERS)}")
    n_init = self.init_n_layer or self.n_layer
    block_cls = nn.remat(Block, prevent_cse=False) if self.remat else Block
    blocks = nn.scan(block_cls, variable_axes={"params": 0}, split_rngs={"params": True},
                     length=self.n_layer)(
        mixer=self.mixer, d_model=self.d_model, d_state=self.d_state, d_conv=self.d_conv,
        expand=self.expand, norm_epsilon=self.norm_epsilon,
        out_proj_scale=(self.n_residuals_per_layer * n_init) ** -0.5,
        scan_method=self.scan_method, chunk_size=self.chunk_size, dtype=self.dtype,
        name="layers")
    residual, _ = blocks(embeddings.astype(self.dtype))
    return nn.RMSNorm(epsilon=self.norm_epsilon, dtype=self.dtype, name="norm_f")(residual)
