"""Enformer (Avsec et al. 2021) as Seq2Exp's Table 1 baseline `GeneEnformer`
(src/models/sequence/Enformer.py of the original: enformer-pytorch 0.8.12's
`Enformer.from_hparams()`, trained from scratch, on the central 196,608 bp of the window;
the trunk's embeddings (B, 896 bins, 2 dim) averaged over the bins, concatenated with the
mRNA features and read by pToExpr (2 dim + 9 -> 128 -> 128 -> 1)).

The trunk is enformer-pytorch's modeling_enformer.py (line numbers from it):
  stem (314): Conv(4 -> dim/2, 15) + Residual(ConvBlock k1) + AttentionPool(2);
  conv tower (322-333): num_downsamples - 1 stages, filters exponentially from dim/2 to dim
    (rounded to dim_divisible_by), each ConvBlock k5 + Residual(ConvBlock k1) + AttentionPool;
  transformer (342-369): depth x [Residual(LayerNorm, RelativeAttention (attention.py),
    Dropout), Residual(LayerNorm, Linear(2 dim), Dropout, ReLU, Linear(dim), Dropout)];
  target crop (193) to the central target_length bins; final pointwise (378): ConvBlock
    (dim -> 2 dim, k1), Dropout(dropout_rate / 8), GELU.
ConvBlock = norm, GELU (sigmoid(1.702 x) x), Conv; AttentionPool = softmax over each pair of
positions of logits from a bias-free D x D map initialised to 2 I. Initialisation follows
PyTorch's defaults as the original keeps them (to_out zero, the rel biases N(0, 1)).

Deliberate differences, not counted as the original's:
* Normalisation: the original's BatchNorm1d (batch statistics in training, running averages
  in evaluation) needs a mutable batch_stats collection the trainer does not carry. Each
  ConvBlock here normalises per example: every channel over the positions of its own
  window (instance norm, flax GroupNorm with one channel per group, eps 1e-5), with the
  same learned scale and bias per channel, so the parameter count is unchanged. At the
  original's batch 4 x 196,608 positions BatchNorm's training statistics are dominated by
  the positions too; what differs is that a window's own channel means are removed and
  that evaluation uses the window's statistics instead of running averages.
* The output heads (human 5,313 and mouse 1,643 tracks with Softplus) are not built: the
  original instantiates them but Seq2Exp's head reads only the embeddings (their outputs
  never reach the loss, so they get no gradient).
* Dropout draws from the "mask" rng stream (the only one the trainer passes), only when
  `train`; the rates are the original's.
`remat` recomputes each conv stage and each transformer layer in the backward pass; the
transformer layers run as one `nn.scan` (params stacked on a leading layer axis).
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from seq2exp_jax.model.attention import RelativeAttention, torch_dense
from seq2exp_jax.model.heads import ExpressionHead
from seq2exp_jax.model.init import symmetric_uniform, torch_linear_init
from seq2exp_jax.model.outputs import ModelOutput

Dtype = Any
POOL = 2


def gelu(x: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
  """enformer-pytorch's GELU approximation, sigmoid(1.702 x) x (line 155)."""
  return jax.nn.sigmoid(1.702 * x) * x


def filter_list(dim: int, num_downsamples: int, divisible_by: int) -> list[int]:
  """Channel widths of the stem and conv tower stages: [dim/2, then num_downsamples - 1
  widths exponentially from dim/2 to dim, rounded to `divisible_by`] (lines 47-52, 322)."""
  start, num = dim // 2, num_downsamples - 1
  base = math.exp(math.log(dim / start) / (num - 1)) if num > 1 else 1.0
  rounded = [int(round(start * base ** i / divisible_by) * divisible_by) for i in range(num)]
  return [start, *(rounded if num > 1 else [dim])]


def torch_conv(features: int, kernel: int, fan_in: int, dtype: Dtype, name: str) -> nn.Conv:
  """A PyTorch Conv1d(padding=kernel // 2) with its default init (U(+-1/sqrt(fan_in)))."""
  return nn.Conv(features, (kernel,), padding=[(kernel // 2, kernel // 2)], dtype=dtype,
                 kernel_init=torch_linear_init(), bias_init=symmetric_uniform(
                     1 / math.sqrt(fan_in * kernel)), name=name)


class ConvBlock(nn.Module):
  """norm -> GELU -> Conv(features, kernel) (the original's BatchNorm: see the module
  docstring). Params `norm/{scale,bias}`, `conv/{kernel,bias}`."""

  features: int
  kernel: int = 1
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Float[Array, "B N C"]) -> Float[Array, "B N E"]:
    x = nn.GroupNorm(num_groups=None, group_size=1, epsilon=1e-5, dtype=self.dtype,
                     name="norm")(x)
    return torch_conv(self.features, self.kernel, x.shape[-1], self.dtype, "conv")(gelu(x))


class AttentionPool(nn.Module):
  """Pairs of positions -> one: softmax over the pair of per-channel logits x W (W: C x C,
  no bias, initialised to 2 I), weighted sum. An odd length gets a masked zero position at
  the end (line 159)."""

  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Float[Array, "B N C"]) -> Float[Array, "B M C"]:
    b, n, c = x.shape
    w = self.param("to_attn_logits", lambda key, shape: 2.0 * jnp.eye(shape[0]), (c, c))
    pad = (-n) % POOL
    x = jnp.pad(x, ((0, 0), (0, pad), (0, 0))).reshape(b, -1, POOL, c)
    logits = (x @ w.astype(self.dtype)).astype(jnp.float32)
    if pad:
      padded = (jnp.arange(n + pad) >= n).reshape(1, -1, POOL, 1)
      logits = jnp.where(padded, -jnp.finfo(jnp.float32).max, logits)
    attn = jax.nn.softmax(logits, axis=2).astype(x.dtype)
    return jnp.sum(x * attn, axis=2)


class Stage(nn.Module):
  """One conv tower stage: ConvBlock(features, 5) + Residual(ConvBlock(features, 1)) +
  AttentionPool (the stem, `stem=True`: Conv(4 -> features, 15) first instead)."""

  features: int
  stem: bool = False
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Float[Array, "B N C"]) -> Float[Array, "B M E"]:
    if self.stem:
      x = torch_conv(self.features, 15, x.shape[-1], self.dtype, "conv")(x.astype(self.dtype))
    else:
      x = ConvBlock(self.features, 5, self.dtype, name="conv_block")(x)
    x = x + ConvBlock(self.features, 1, self.dtype, name="residual")(x)
    return AttentionPool(self.dtype, name="pool")(x)


class TransformerLayer(nn.Module):
  """Residual(LayerNorm, RelativeAttention, Dropout) + Residual(LayerNorm, Linear(2 D),
  Dropout, ReLU, Linear(D), Dropout) (lines 344-367); the carry of an nn.scan."""

  heads: int
  dim_key: int
  dropout_rate: float
  attn_dropout: float
  pos_dropout: float
  train: bool = False
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Float[Array, "B N D"], _: None = None) -> tuple[Float[Array, "B N D"],
                                                                         None]:
    d = x.shape[-1]
    drop = lambda y: nn.Dropout(self.dropout_rate, rng_collection="mask")(  # noqa: E731
        y, deterministic=not self.train)
    norm = lambda name: nn.LayerNorm(epsilon=1e-5, dtype=self.dtype, name=name)  # noqa: E731
    attn = RelativeAttention(heads=self.heads, dim_key=self.dim_key, dim_value=d // self.heads,
                             num_rel_pos_features=d // self.heads,
                             attn_dropout=self.attn_dropout, pos_dropout=self.pos_dropout,
                             dtype=self.dtype, name="attention")
    x = x + drop(attn(norm("attention_norm")(x), train=self.train))
    y = torch_dense(2 * d, d, self.dtype, "ff_in")(norm("ff_norm")(x))
    y = torch_dense(d, 2 * d, self.dtype, "ff_out")(nn.relu(drop(y)))
    return x + drop(y), None


class Enformer(nn.Module):
  """Enformer trunk on the central `crop` bp of the DNA + Seq2Exp's head. Paper defaults:
  enformer-pytorch's EnformerConfig (config_enformer.py) and GeneEnformer's (d_model 128,
  useRNAFeat). A window shorter than `crop` is read whole. Signals are not read."""

  dim: int = 1536
  depth: int = 11
  heads: int = 8
  attn_dim_key: int = 64
  dropout_rate: float = 0.4
  attn_dropout: float = 0.05
  pos_dropout: float = 0.01
  target_length: int = 896
  num_downsamples: int = 7
  dim_divisible_by: int = 128
  crop: int = 196_608
  d_model: int = 128  # pToExpr's width (the original's config.d_model)
  use_rna_feat: bool = True
  dtype: Dtype = jnp.float32
  remat: bool = False

  def __post_init__(self):
    if min(self.dim, self.depth, self.heads, self.attn_dim_key, self.target_length,
           self.crop, self.d_model, self.dim_divisible_by) < 1 or self.num_downsamples < 2:
      raise ValueError(f"Enformer: dim, depth, heads, attn_dim_key, target_length, crop, "
                       f"d_model, dim_divisible_by >= 1 and num_downsamples >= 2 expected, "
                       f"got {self.dim}, {self.depth}, {self.heads}, {self.attn_dim_key}, "
                       f"{self.target_length}, {self.crop}, {self.d_model}, "
                       f"{self.dim_divisible_by}, {self.num_downsamples}")
    if self.dim % self.heads or (self.dim // self.heads) % 6 or self.dim % 2:
      raise ValueError(f"Enformer: dim={self.dim} must be even and split into heads="
                       f"{self.heads} of a width divisible by 6 (the positional features)")
    if filter_list(self.dim, self.num_downsamples, self.dim_divisible_by)[-1] != self.dim:
      raise ValueError(f"Enformer: the conv tower's last width rounds dim={self.dim} to a "
                       f"multiple of dim_divisible_by={self.dim_divisible_by}: expected a "
                       "dim that is one")
    for name in ("dropout_rate", "attn_dropout", "pos_dropout"):
      if not 0.0 <= getattr(self, name) < 1.0:
        raise ValueError(f"Enformer: {name}={getattr(self, name)}: expected in [0, 1)")
    super().__post_init__()

  @property
  def extra_inputs(self) -> tuple[str, ...]:
    """Batch fields beyond dna, signals, rna_feat and blacklist: none."""
    return ()

  @property
  def center_len(self) -> int:
    """The bp the pooled output bins cover (the model has no mask to measure)."""
    return self.target_length * POOL ** self.num_downsamples

  @nn.compact
  def __call__(self, dna: Float[Array, "B L 4"], signals: Float[Array, "B L S"],
               rna_feat: Float[Array, "B F"], blacklist: Bool[Array, "B L"] | None = None, *,
               train: bool = False, mask: Float[Array, "B L"] | None = None) -> ModelOutput:
    """The prediction from the central `crop` bp of `dna`; `signals` and `blacklist` are
    not read; dropout only with `train`."""
    del signals, blacklist
    if mask is not None:
      raise ValueError("Enformer reads the whole window: it takes no mask")
    start = max(0, (dna.shape[1] - self.crop) // 2)
    x = dna[:, start:start + self.crop]
    filters = filter_list(self.dim, self.num_downsamples, self.dim_divisible_by)
    stage = nn.remat(Stage) if self.remat else Stage
    x = stage(filters[0], stem=True, dtype=self.dtype, name="stem")(x)
    for i, features in enumerate(filters[1:]):
      x = stage(features, dtype=self.dtype, name=f"tower_{i}")(x)
    layer = nn.remat(TransformerLayer, prevent_cse=False) if self.remat else TransformerLayer
    layers = nn.scan(layer, variable_axes={"params": 0}, split_rngs={"params": True,
                                                                     "mask": True},
                     length=self.depth)(
        self.heads, self.attn_dim_key, self.dropout_rate, self.attn_dropout,
        self.pos_dropout, train, self.dtype, name="transformer")
    x, _ = layers(x)
    x = crop_bins(x, self.target_length)
    x = ConvBlock(2 * self.dim, 1, self.dtype, name="final_pointwise")(x)
    x = gelu(nn.Dropout(self.dropout_rate / 8, rng_collection="mask")(
        x, deterministic=not train))
    pooled = jnp.mean(x.astype(jnp.float32), axis=1)
    head = ExpressionHead(self.d_model, dtype=self.dtype, use_rna_feat=self.use_rna_feat,
                          name="pToExpr")
    return ModelOutput.unmasked(head(pooled, rna_feat))


def crop_bins(x: Float[Array, "B N D"], target_length: int) -> Float[Array, "B T D"]:
  """The central bins, as TargetLengthCrop (line 193): (T - N) // 2 = -t rounds down, so t
  bins come off each end and an odd N - T keeps T - 1 bins, as in the original."""
  n = x.shape[1]
  if n < target_length:
    raise ValueError(f"Enformer: {n} bins after downsampling, fewer than target_length="
                     f"{target_length}")
  trim = -((target_length - n) // 2)
  return x[:, trim:n - trim]
