"""Small layers shared by the backbones and models: the input Linear, the depthwise causal
convolution, and PyTorch's softplus."""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from seq2exp_jax.model.init import symmetric_uniform, torch_linear_init

Dtype = Any


def torch_softplus(x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
  """softplus as PyTorch computes it (identity above 20; equal to log1p(exp(x)) in f32)."""
  return jnp.where(x > 20.0, x, jax.nn.softplus(x))


def input_dense(features: int, dtype: Dtype, name: str) -> nn.Dense:
  """An input Linear as the original's (kaiming-uniform weight, bias zeroed by post_init)."""
  return nn.Dense(features, dtype=dtype, kernel_init=torch_linear_init(),
                  bias_init=nn.initializers.zeros, name=name)


class CausalDepthwiseConv(nn.Module):
  """Depthwise causal convolution with a short kernel (PyTorch Conv1d(groups=C,
  padding=K-1), first L outputs): y[t] = bias + sum_j kernel[j] x[t - K + 1 + j].

  Params: `kernel` (K, C), where kernel[K-1] multiplies the current step (PyTorch's weight
  (C, 1, K) transposed), and `bias` (C,), both U(+-1/sqrt(K)) as PyTorch initialises them.
  Written as K shifted multiply-adds rather than a grouped `lax.conv`: the same result, but
  XLA:CPU runs a grouped convolution of this shape ~15x slower (5.0 s vs 0.34 s at
  L = 200,000, C = 384). Used by the Mamba mixer (K 4) and the Hyena operator (K 3).
  """

  kernel_size: int = 4
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Float[Array, "B L C"]) -> Float[Array, "B L C"]:
    """Output t sees inputs t-K+1..t only; computed in `dtype`."""
    size, channels, length = self.kernel_size, x.shape[-1], x.shape[1]
    init = symmetric_uniform(1 / math.sqrt(size))
    kernel = self.param("kernel", init, (size, channels)).astype(self.dtype)
    bias = self.param("bias", init, (channels,)).astype(self.dtype)
    padded = jnp.pad(x.astype(self.dtype), ((0, 0), (size - 1, 0), (0, 0)))
    out = bias
    for j in range(size):
      out = out + padded[:, j:j + length] * kernel[j]
    return out


SIGNAL_TRANSFORMS = ("none", "log1p")


def log_reads(x: Float[Array, "..."]) -> Float[Array, "..."]:
  """log(1 + max(x, 0)) in float32: read counts on a compressed scale."""
  return jnp.log1p(jnp.maximum(x.astype(jnp.float32), 0.0))


def transform_signals(signals: Float[Array, "B L S"], transform: str, keep: int
                      ) -> Float[Array, "B L S"]:
  """The signals a model's input Linear reads: as they are ("none", the original), or
  log(1 + x) on every track but `keep` (the Hi-C track, stored as log10(1 + contact)
  already), so that DNase peaks of several hundred reads do not swamp the embedding."""
  if transform == "none":
    return signals
  if transform != "log1p":
    raise ValueError(f"signal transform {transform!r}: expected one of {SIGNAL_TRANSFORMS}")
  logged = log_reads(signals)
  tracks = jnp.arange(signals.shape[-1]) == keep
  return jnp.where(tracks, signals.astype(jnp.float32), logged)
