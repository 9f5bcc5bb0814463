"""The Hyena operator and the HyenaDNA backbone (a baseline of the paper's table).

A Hyena operator of order N (Poli et al. 2023, as in HyenaDNA, Nguyen et al. 2023):

    in_proj:  u (B, L, D) -> (B, L, (N + 1) D), then a short depthwise causal convolution
    split:    x_0, x_1, ..., x_{N-1}, v        each (B, L, D)
    for i = N-1 .. 1:   w = v . x_i;  v = h_i * w + b_i . w
    y = out_proj(v . x_0)

(. a product, * a causal long convolution with the implicit filter h_i (L, D), b_i (D,) a
learned skip weight per channel.)

The long filters are implicit: a small MLP with sine activations maps
positional features of t in [0, 1] to one tap per channel, and an exponential window
makes each channel forget at its own rate. The long convolutions run through the FFT
(`fft_conv.fft_causal_conv`) in O(L log L), so nothing larger than O(B L D) is held per
layer and a 200 kb window fits.

The layout follows HyenaDNA's `standalone_hyena.py` (in_proj with a bias, the filter's
per-channel skip bias on). Differences, on purpose: the positional features are recomputed
from the static L on each call rather than stored as a (slowly) learned table of fixed
length, and there is no dropout. Initialisation follows HyenaDNA: Dense kernels N(0, 0.02),
biases 0, the residual output projections (mixer `out_proj`, MLP `fc2`)
N(0, 0.02 / sqrt(2 n_layer)), PyTorch's default uniform init for the short convolution,
N(0, 1) for the filter skip bias.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from seq2exp_jax.model.fft_conv import fft_causal_conv

Dtype = Any
INIT_STD = 0.02
LAYER_NORM_EPS = 1e-5


class PositionalEmbedding(nn.Module):
  """HyenaDNA's positional features, the input of the implicit filter (no parameters).

  With bands = (emb_dim - 1) // 2 frequencies f = linspace(1e-4, bands - 1, bands) and
  w_t = 2 pi t / L for t = 0..L-1: z = [t / (L - 1), cos(f w_t), -sin(f w_t)].
  """
  emb_dim: int = 5

  @nn.compact
  def __call__(self, length: int) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Returns z: float32 (L, emb_dim) features and t: float32 (L, 1) = linspace(0, 1, L)."""
    if self.emb_dim < 3 or self.emb_dim % 2 == 0:
      raise ValueError(f"PositionalEmbedding: emb_dim must be odd and >= 3, got {self.emb_dim}")
    bands = (self.emb_dim - 1) // 2
    t = jnp.linspace(0.0, 1.0, length, dtype=jnp.float32)[:, None]
    w = 2.0 * math.pi * jnp.arange(length, dtype=jnp.float32)[:, None] / length
    f = jnp.linspace(1e-4, bands - 1, bands, dtype=jnp.float32)[None, :]
    z = jnp.concatenate([t, jnp.cos(f * w), -jnp.sin(f * w)], axis=-1)
    return z, t


class ExponentialModulation(nn.Module):
  """Multiplies channel d of a filter by exp(-t |delta_d|) + shift (fixed, not learned).

  The rates |delta| run linearly over the channels from log(1/target) / slow_decay_pct
  (channel 0, slowest) to log(1/target) / fast_decay_pct (last channel, fastest): the
  fastest channel falls to `target` at t = fast_decay_pct of the window.
  """
  fast_decay_pct: float = 0.3
  slow_decay_pct: float = 1.5
  target: float = 1e-2
  shift: float = 0.0

  @nn.compact
  def __call__(self, t: jnp.ndarray, h: jnp.ndarray) -> jnp.ndarray:
    """t: (L, 1) in [0, 1]; h: (L, D) filter taps. Returns (L, D)."""
    max_decay = math.log(self.target) / self.fast_decay_pct
    min_decay = math.log(self.target) / self.slow_decay_pct
    deltas = jnp.linspace(min_decay, max_decay, h.shape[-1], dtype=jnp.float32)
    return h * (jnp.exp(-t * jnp.abs(deltas)) + self.shift)


class Sin(nn.Module):
  """sin(freq * x) with a learned per-feature frequency (initialised to `w`)."""
  features: int
  w: float = 1.0

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    """x: (..., features). Returns the same shape."""
    freq = self.param("freq", nn.initializers.constant(self.w), (self.features,), jnp.float32)
    return jnp.sin(freq * x)


class HyenaFilter(nn.Module):
  """Implicit long filter: positional features -> Sin MLP -> exponential window.

  MLP emb_dim -> filter_order -> (num_inner_mlps x filter_order) -> features, one `Sin`
  shared by all hidden layers as in HyenaDNA (the same module object is reused there),
  no bias on the last layer. Always float32: it is small ((L, filter_order)) and feeds the
  float32 FFT.
  """
  features: int
  filter_order: int = 64
  emb_dim: int = 5
  num_inner_mlps: int = 2
  w: float = 1.0
  init_std: float = INIT_STD

  @nn.compact
  def __call__(self, length: int) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Returns k: float32 (L, features) filter taps and bias: float32 (features,) skip weights."""
    z, t = PositionalEmbedding(self.emb_dim, name="pos_emb")(length)
    dense = lambda n, name, use_bias=True: nn.Dense(
        n, use_bias=use_bias, kernel_init=nn.initializers.normal(self.init_std), name=name)
    act = Sin(self.filter_order, self.w, name="act")
    h = act(dense(self.filter_order, "implicit_0")(z))
    for i in range(self.num_inner_mlps):
      h = act(dense(self.filter_order, f"implicit_{i + 1}")(h))
    h = dense(self.features, "implicit_out", use_bias=False)(h)
    k = ExponentialModulation(name="modulation")(t, h)
    bias = self.param("bias", nn.initializers.normal(1.0), (self.features,), jnp.float32)
    return k, bias


class ShortCausalConv(nn.Module):
  """Depthwise causal convolution with a short kernel: y[t] = b + sum_j w[j] x[t - K + 1 + j].

  Written as K shifted multiply-adds rather than a grouped `lax.conv`: same result, but
  XLA:CPU runs a (B, L, 3D) grouped convolution ~15x slower (5.0 s vs 0.34 s at
  L = 200,000, 3D = 384). Parameters: kernel (K, C) (PyTorch's Conv1d weight (C, 1, K)
  transposed), bias (C,), both initialised as PyTorch's default U(-1/sqrt(K), 1/sqrt(K)).
  """
  kernel_size: int = 3
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    """x: (B, L, C). Returns (B, L, C) in `dtype`; output t sees inputs t-K+1..t only."""
    channels, length, size = x.shape[-1], x.shape[1], self.kernel_size
    bound = 1.0 / math.sqrt(size)

    def init(key, shape, dtype=jnp.float32):
      return jax.random.uniform(key, shape, dtype, -bound, bound)

    kernel = self.param("kernel", init, (size, channels), jnp.float32).astype(self.dtype)
    bias = self.param("bias", init, (channels,), jnp.float32).astype(self.dtype)
    padded = jnp.pad(x.astype(self.dtype), ((0, 0), (size - 1, 0), (0, 0)))
    y = bias
    for j in range(size):
      y = y + padded[:, j:j + length] * kernel[j]
    return y


class HyenaOperator(nn.Module):
  """Order-N Hyena mixer (see module docstring); causal in the position axis."""
  d_model: int
  order: int = 2
  filter_order: int = 64
  short_filter_order: int = 3
  emb_dim: int = 5
  dtype: Dtype = jnp.float32
  init_std: float = INIT_STD
  out_init_std: float = INIT_STD

  @nn.compact
  def __call__(self, u: jnp.ndarray) -> jnp.ndarray:
    """u: (B, L, D) with D = d_model. Returns (B, L, D) in `dtype`."""
    if self.order < 2:
      raise ValueError(f"HyenaOperator: order must be >= 2, got {self.order}")
    if u.ndim != 3 or u.shape[-1] != self.d_model:
      raise ValueError(f"HyenaOperator: input must be (B, L, D={self.d_model}), got {u.shape}")
    length, width = u.shape[1], self.d_model
    inner = (self.order + 1) * width

    u = nn.Dense(inner, dtype=self.dtype, kernel_init=nn.initializers.normal(self.init_std),
                 name="in_proj")(u)  # (B, L, (N+1) D)
    u = ShortCausalConv(self.short_filter_order, self.dtype, name="short_filter")(u)
    *x, v = jnp.split(u, self.order + 1, axis=-1)

    n_long = self.order - 1
    k, bias = HyenaFilter(n_long * width, self.filter_order, self.emb_dim,
                          init_std=self.init_std, name="filter")(length)
    k = k.reshape(length, n_long, width)  # channel o * D + d (HyenaDNA's standalone layout)
    bias = bias.reshape(n_long, width)
    for o, x_i in enumerate(reversed(x[1:])):
      v = fft_causal_conv(v * x_i, k[:, o], bias[o])
    y = v * x[0]
    return nn.Dense(width, dtype=self.dtype, kernel_init=nn.initializers.normal(self.out_init_std),
                    name="out_proj")(y)


class HyenaBlock(nn.Module):
  """Pre-norm residual block: x + mixer(LN(x)), then x + MLP(LN(x)) (tanh GELU, mlp_ratio x)."""
  d_model: int
  order: int = 2
  filter_order: int = 64
  mlp_ratio: int = 4
  dtype: Dtype = jnp.float32
  out_init_std: float = INIT_STD

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    """x: float32 (B, L, D) residual stream. Returns float32 (B, L, D)."""
    norm = lambda name: nn.LayerNorm(LAYER_NORM_EPS, dtype=self.dtype, name=name)
    dense = lambda n, std, name: nn.Dense(n, dtype=self.dtype,
                                          kernel_init=nn.initializers.normal(std), name=name)
    h = HyenaOperator(self.d_model, self.order, self.filter_order, dtype=self.dtype,
                      out_init_std=self.out_init_std, name="mixer")(norm("norm1")(x))
    x = x + h.astype(jnp.float32)
    h = dense(self.mlp_ratio * self.d_model, INIT_STD, "fc1")(norm("norm2")(x))
    h = dense(self.d_model, self.out_init_std, "fc2")(nn.gelu(h, approximate=True))
    return x + h.astype(jnp.float32)


class HyenaBackbone(nn.Module):
  """HyenaDNA backbone: n_layer HyenaBlocks on a float32 residual stream, then a LayerNorm.

  Input embeddings in, contextual embeddings out; causal (output t sees inputs <= t).
  `remat` recomputes each block's activations in the backward pass (`nn.remat`), so
  training keeps one (B, L, D) input per block instead of all intermediates.
  """
  d_model: int
  n_layer: int
  order: int = 2
  filter_order: int = 64
  mlp_ratio: int = 4
  remat: bool = False
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    """x: (B, L, D) input embeddings. Returns (B, L, D) in `dtype`."""
    if x.ndim != 3 or x.shape[-1] != self.d_model:
      raise ValueError(f"HyenaBackbone: input must be (B, L, D={self.d_model}), got {x.shape}")
    if self.n_layer < 1:
      raise ValueError(f"HyenaBackbone: n_layer must be >= 1, got {self.n_layer}")
    block_cls = nn.remat(HyenaBlock) if self.remat else HyenaBlock
    out_std = INIT_STD / math.sqrt(2 * self.n_layer)
    x = x.astype(jnp.float32)
    for i in range(self.n_layer):
      x = block_cls(self.d_model, self.order, self.filter_order, self.mlp_ratio, self.dtype,
                    out_std, name=f"layers_{i}")(x)
    return nn.LayerNorm(LAYER_NORM_EPS, dtype=self.dtype, name="ln_f")(x)
