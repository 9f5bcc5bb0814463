"""The Hyena operator and the HyenaDNA backbone (a baseline of the paper's table).

A Hyena operator of order O (Poli et al. 2023, as in HyenaDNA, Nguyen et al. 2023):

    in_proj:  u (B, L, D) -> (B, L, (O + 1) D), then a short depthwise causal convolution
    split:    x_0, x_1, ..., x_{O-1}, v        each (B, L, D)
    for i = O-1 .. 1:   w = v . x_i;  v = h_i * w + b_i . w
    y = out_proj(v . x_0)

(. a product, * a causal long convolution with the implicit filter h_i (L, D), b_i (D,) a
learned skip weight per channel.)

The long filters are implicit: a small MLP with sine activations maps
positional features of t in [0, 1] to one tap per channel, and an exponential window
makes each channel forget at its own rate. The long convolutions run through the FFT
(`fft_conv.fft_causal_conv`) in O(L log L), so nothing larger than O(B L D) is held per
layer and a 200 kb window fits.

The layout follows HyenaDNA's `standalone_hyena.py` (in_proj with a bias, the filter's
per-channel skip bias on); every setting comes from one `HyenaConfig`. Differences, on purpose: the positional features are recomputed
from the static L on each call rather than stored as a (slowly) learned table of fixed
length, and there is no dropout. Initialisation follows HyenaDNA: Dense kernels N(0, 0.02),
biases 0, the residual output projections (mixer `out_proj`, MLP `fc2`)
N(0, 0.02 / sqrt(2 n_layer)), PyTorch's default uniform init for the short convolution,
N(0, 1) for the filter skip bias.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
from jaxtyping import Array, Float

from seq2exp_jax.model.fft_conv import fft_causal_conv
from seq2exp_jax.model.layers import CausalDepthwiseConv

INIT_STD = 0.02
LAYER_NORM_EPS = 1e-5


@dataclasses.dataclass(frozen=True)
class HyenaConfig:
  """Every setting of a HyenaDNA backbone (the `SSMConfig` of the Hyena family).

  Attributes:
    d_model: D, the residual-stream width.
    order: O >= 2, the number of gated long convolutions plus one.
    filter_order: width of the implicit filter's MLP.
    short_filter_order: K, the kernel of the short causal convolution after in_proj.
    emb_dim: odd >= 3, the positional features the filter MLP reads.
    mlp_ratio: the block MLP's hidden width / D.
    remat: recompute each block in the backward pass.
    dtype: the compute dtype (the FFT and the filters run in float32).
  """

  d_model: int = 128
  order: int = 2
  filter_order: int = 64
  short_filter_order: int = 3
  emb_dim: int = 5
  mlp_ratio: int = 4
  remat: bool = False
  dtype: Any = jnp.float32

  def __post_init__(self):
    for name in ("d_model", "filter_order", "short_filter_order", "mlp_ratio"):
      value = getattr(self, name)
      if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"HyenaConfig.{name}={value!r}: expected a positive integer")
    if not isinstance(self.order, int) or self.order < 2:
      raise ValueError(f"HyenaConfig.order={self.order!r}: expected an integer >= 2")
    if self.emb_dim < 3 or self.emb_dim % 2 == 0:
      raise ValueError(f"HyenaConfig.emb_dim={self.emb_dim!r}: expected an odd integer >= 3")

  @property
  def kind(self) -> str:
    """The backbone's name in `backbones.BACKBONES`."""
    return "hyena"


class PositionalEmbedding(nn.Module):
  """HyenaDNA's positional features, the input of the implicit filter (no parameters).

  With bands = (emb_dim - 1) // 2 frequencies f = linspace(1e-4, bands - 1, bands) and
  w_t = 2 pi t / L for t = 0..L-1: z = [t / (L - 1), cos(f w_t), -sin(f w_t)].
  """
  emb_dim: int = 5

  @nn.compact
  def __call__(self, length: int) -> tuple[Float[Array, "L Z"], Float[Array, "L 1"]]:
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
  def __call__(self, t: Float[Array, "L 1"], h: Float[Array, "L D"]) -> Float[Array, "L D"]:
    """t in [0, 1]; h: filter taps."""
    max_decay = math.log(self.target) / self.fast_decay_pct
    min_decay = math.log(self.target) / self.slow_decay_pct
    deltas = jnp.linspace(min_decay, max_decay, h.shape[-1], dtype=jnp.float32)
    return h * (jnp.exp(-t * jnp.abs(deltas)) + self.shift)


class Sin(nn.Module):
  """sin(freq * x) with a learned per-feature frequency (initialised to `w`)."""
  features: int
  w: float = 1.0

  @nn.compact
  def __call__(self, x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
    """x: (..., features)."""
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
  def __call__(self, length: int) -> tuple[Float[Array, "L C"], Float[Array, "C"]]:
    """Returns k: float32 (L, C = features) filter taps and bias: float32 (C,) skip weights."""
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


class HyenaOperator(nn.Module):
  """Order-O Hyena mixer (see module docstring); causal in the position axis."""
  config: HyenaConfig
  out_init_std: float = INIT_STD

  @nn.compact
  def __call__(self, u: Float[Array, "B L D"]) -> Float[Array, "B L D"]:
    """Returns the mixed sequence in `config.dtype`."""
    c = self.config
    if u.shape[-1] != c.d_model:
      raise ValueError(f"HyenaOperator: input must be (B, L, D={c.d_model}), got {u.shape}")
    length, width = u.shape[1], c.d_model
    inner = (c.order + 1) * width

    u = nn.Dense(inner, dtype=c.dtype, kernel_init=nn.initializers.normal(INIT_STD),
                 name="in_proj")(u)  # (B, L, (O+1) D)
    u = CausalDepthwiseConv(c.short_filter_order, c.dtype, name="short_filter")(u)
    *x, v = jnp.split(u, c.order + 1, axis=-1)

    n_long = c.order - 1
    k, bias = HyenaFilter(n_long * width, c.filter_order, c.emb_dim, init_std=INIT_STD,
                          name="filter")(length)
    k = k.reshape(length, n_long, width)  # channel o * D + d (HyenaDNA's standalone layout)
    bias = bias.reshape(n_long, width)
    for o, x_i in enumerate(reversed(x[1:])):
      v = fft_causal_conv(v * x_i, k[:, o], bias[o])
    y = v * x[0]
    return nn.Dense(width, dtype=c.dtype, kernel_init=nn.initializers.normal(self.out_init_std),
                    name="out_proj")(y)


class HyenaBlock(nn.Module):
  """Pre-norm residual block: x + mixer(LN(x)), then x + MLP(LN(x)) (tanh GELU, mlp_ratio x)."""
  config: HyenaConfig
  out_init_std: float = INIT_STD

  @nn.compact
  def __call__(self, x: Float[Array, "B L D"]) -> Float[Array, "B L D"]:
    """x: the float32 residual stream; returns the next one (float32)."""
    c = self.config
    norm = lambda name: nn.LayerNorm(LAYER_NORM_EPS, dtype=c.dtype, name=name)  # noqa: E731
    dense = lambda n, std, name: nn.Dense(n, dtype=c.dtype,  # noqa: E731
                                          kernel_init=nn.initializers.normal(std), name=name)
    h = HyenaOperator(c, self.out_init_std, name="mixer")(norm("norm1")(x))
    x = x + h.astype(jnp.float32)
    h = dense(c.mlp_ratio * c.d_model, INIT_STD, "fc1")(norm("norm2")(x))
    h = dense(c.d_model, self.out_init_std, "fc2")(nn.gelu(h, approximate=True))
    return x + h.astype(jnp.float32)


class HyenaBackbone(nn.Module):
  """HyenaDNA backbone: n_layer HyenaBlocks on a float32 residual stream, then a LayerNorm.

  Input embeddings in, contextual embeddings out; causal (output t sees inputs <= t).
  `config.remat` recomputes each block's activations in the backward pass (`nn.remat`), so
  training keeps one (B, L, D) input per block instead of all intermediates.
  """
  config: HyenaConfig
  n_layer: int

  def __post_init__(self):
    if not isinstance(self.n_layer, int) or self.n_layer < 1:
      raise ValueError(f"HyenaBackbone: n_layer must be >= 1, got {self.n_layer}")
    super().__post_init__()

  @nn.compact
  def __call__(self, x: Float[Array, "B L D"]) -> Float[Array, "B L D"]:
    """Returns the contextual embeddings in `config.dtype`."""
    c = self.config
    if x.shape[-1] != c.d_model:
      raise ValueError(f"HyenaBackbone: input must be (B, L, D={c.d_model}), got {x.shape}")
    block_cls = nn.remat(HyenaBlock) if c.remat else HyenaBlock
    out_std = INIT_STD / math.sqrt(2 * self.n_layer)
    x = x.astype(jnp.float32)
    for i in range(self.n_layer):
      x = block_cls(c, out_std, name=f"layers_{i}")(x)
    return nn.LayerNorm(LAYER_NORM_EPS, dtype=c.dtype, name="ln_f")(x)
