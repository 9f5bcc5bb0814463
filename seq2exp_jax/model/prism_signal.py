"""Prism's signal encoder (`SignalWeightGenerator`) and its uniform loss, as
yangzhao1230/Prism src/models/sequence/GeneExpformer.py defines them.

The encoder maps a window's signal tracks (B, L, S) to n_context weight vectors over the
model width, (B, D, Q) with Q = n_context (lines 17-65):

    3 x [Conv1d (kernels 7, 5, 3; widths c, 2c, 4c; 'same' zero padding) -> BatchNorm1d
         -> ReLU -> MaxPool1d(4, stride 4)]  -> mean over what is left -> Linear(4c -> D n)
    -> reshaped (D, n) with the flat index d * n + k (torch's `.view(bs, d_model, n)`)
    -> sigmoid (or a softmax over D with weight_act="softmax")

BatchNorm normalises with the batch's own statistics (biased variance, eps 1e-5), as
PyTorch's BatchNorm1d does in training. Prism reads the encoder only for its training
losses (the prediction never goes through it, see prism.py), so the running averages
PyTorch keeps for evaluation change no prediction and are not kept here.

The uniform loss (lines 102-116) spreads the n weight vectors apart: with each vector
L2-normalised (+1e-8), G = exp(2t <a_i, a_j> - 2t) over all pairs (i, j), the loss is the
batch mean of log(sum_ij G), t = gaussian_kernel_t.

Params: `conv_{0,1,2}` (kernel (K, C_in, C_out), bias; PyTorch's U(+-1/sqrt(C_in K))),
`norm_{0,1,2}` (scale 1, bias 0), `weight_projector` (bias zeroed, as Prism's post_init
zeroes every Linear bias).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from seq2exp_jax.model.init import symmetric_uniform, torch_linear_init

Dtype = Any
WEIGHT_ACTS = ("sigmoid", "softmax")
KERNELS = (7, 5, 3)  # the three convs' kernels; widths cnn_dim x (1, 2, 4)
POOL = 4  # MaxPool1d(kernel_size=4, stride=4) after each conv
BN_EPS = 1e-5


class BatchStatNorm(nn.Module):
  """BatchNorm1d in training mode: per channel, over batch and positions, float32; params
  `scale` (1) and `bias` (0)."""

  @nn.compact
  def __call__(self, x: Float[Array, "B L C"]) -> Float[Array, "B L C"]:
    scale = self.param("scale", nn.initializers.ones, (x.shape[-1],))
    bias = self.param("bias", nn.initializers.zeros, (x.shape[-1],))
    x = x.astype(jnp.float32)
    mean = jnp.mean(x, axis=(0, 1))
    var = jnp.mean(jnp.square(x - mean), axis=(0, 1))
    return (x - mean) * jax.lax.rsqrt(var + BN_EPS) * scale + bias


class SignalWeightGenerator(nn.Module):
  """signals (B, L, S) -> context weights (B, D, n_context)."""

  d_model: int
  n_context: int = 2
  cnn_dim: int = 8
  weight_act: str = "sigmoid"
  dtype: Dtype = jnp.float32

  def __post_init__(self):
    if self.weight_act not in WEIGHT_ACTS:
      raise ValueError(f"Prism weight_act={self.weight_act!r}: expected one of {WEIGHT_ACTS}")
    if self.n_context < 1 or self.cnn_dim < 1:
      raise ValueError(f"Prism n_context={self.n_context}, cnn_dim={self.cnn_dim}: expected "
                       ">= 1")
    super().__post_init__()

  @nn.compact
  def __call__(self, signals: Float[Array, "B L S"]) -> Float[Array, "B D Q"]:
    if signals.shape[1] < POOL ** len(KERNELS):
      raise ValueError(f"Prism's signal encoder pools by {POOL ** len(KERNELS)}: the window "
                       f"({signals.shape[1]}) must be at least that long")
    x = signals
    for i, kernel in enumerate(KERNELS):
      width = self.cnn_dim * 2 ** i
      init = symmetric_uniform((x.shape[-1] * kernel) ** -0.5)  # fan_in = C_in x K
      x = nn.Conv(width, (kernel,), padding=[(kernel // 2, kernel // 2)], dtype=self.dtype,
                  kernel_init=init, bias_init=init, name=f"conv_{i}")(x)
      x = nn.relu(BatchStatNorm(name=f"norm_{i}")(x))
      x = nn.max_pool(x, (POOL,), strides=(POOL,), padding="VALID")  # floor, as PyTorch
    encoded = jnp.mean(x, axis=1)  # AdaptiveAvgPool1d(1) + Flatten
    flat = nn.Dense(self.d_model * self.n_context, dtype=self.dtype,
                    kernel_init=torch_linear_init(), bias_init=nn.initializers.zeros,
                    name="weight_projector")(encoded)
    raw = flat.reshape(flat.shape[0], self.d_model, self.n_context).astype(jnp.float32)
    if self.weight_act == "sigmoid":
      return jax.nn.sigmoid(raw)
    return jax.nn.softmax(raw, axis=1)


def uniform_loss(weights: Float[Array, "B D Q"], t: float) -> Float[Array, ""]:
  """mean_b log sum_{i,j} exp(2t cos(a_i, a_j) - 2t), a_k = weights[b, :, k] (float32)."""
  w = weights.astype(jnp.float32)
  unit = w / (jnp.linalg.norm(w, axis=1, keepdims=True) + 1e-8)
  dots = jnp.einsum("bdi,bdj->bij", unit, unit)
  return jnp.mean(jnp.log(jnp.sum(jnp.exp(2 * t * dots - 2 * t), axis=(1, 2))))
