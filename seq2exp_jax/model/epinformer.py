"""EPInformer (Lin et al. 2024) as the Seq2Exp paper compares it: the Table 1 row.

It reads each gene's promoter and up to 60 candidate elements (Batch.element_*), not the
per-base window: a convolutional encoder embeds each 2 kb sequence, Linear+ReLU layers add
the element's features (distance, log10 contact, activity), attention layers let the
promoter read the elements, and the expression head reads the promoter's embedding and the
mRNA features.

    element_dna (B M W 4) ──> ElementEncoder (per slot) ──> (B M out_dim)
       ++ element_feat ──> add_pos_conv ──> n_encoder x EncoderLayer ──> slot 0
       ++ rna_feat ──> pToExpr ──> prediction

Follows the original Seq2Exp repo's src/models/sequence/EPInformer.py `EPInformer_v2`
(registry "EPInformer", configs/model/CAGE_promo_enhan.yaml: useBN, useFeat, useLN True;
usePromoterSignal and n_extraFeat=3 from the experiment). pinellolab/EPInformer's
EPInformer/models.py `EPInformer_v2` is the same network (its only differences: a `device`
argument and `n_enhancer` for `n_enhancers`). Layers, line numbers of the Seq2Exp copy:

* seq_256bp_encoder (12-47): Conv k8 'same' (4 -> 256) + ELU; 4 stages of Conv k3 + norm +
  ELU + max-pool 2 then a residual 1x1 Conv + ELU (widths 128, 64, 64, 128): 2000 -> 125.
* conv_out (170-186): dilated Convs k3 (dilation 2, 4, 6, 'valid') and a 1x1 Conv to 32
  channels, each + norm + ELU (125 -> 101); Linear over the length axis (101 -> out_dim/32)
  + ELU; flattened channel-major to out_dim per slot (line 234).
* add_pos_conv (221-226): Conv1d k1 (out_dim + 3 -> out_dim) + ReLU, Conv1d k1 + ReLU.
* MHAttention_encoderLayer (75-106): pre-LayerNorm multi-head attention and a 4x ReLU
  feed-forward, both residual; dropout 0 in the original, so none here.
* The attention mask (163-168): the boolean matrix (True = not allowed) with only the
  diagonal, row 0 and column 0 allowed (`attn_mask.masked_fill(...)` returns a new tensor
  that is discarded, so the boolean mask is what torch uses): each element attends to
  itself and the promoter, the promoter to every slot; plus the key padding mask of empty
  slots (line 230).
* pToExpr (206-212): (out_dim + 9) -> 128 -> 128 -> 1, ReLU: model/heads.py ExpressionHead
  with width `head_width` (128) on the out_dim embedding is exactly that.

Deliberate differences:

* BatchNorm2d -> `ElementNorm`, a per-slot normalisation: each channel over the slot's
  positions (instance norm) with BatchNorm's learned scale and bias. The trainer carries no
  mutable batch statistics (train/step.py, checkpoints, export), and a per-slot norm keeps
  each slot's embedding independent of other genes and other slots, so padded slots change
  nothing and the attention mask is the only path between slots. Parameter count unchanged
  (BatchNorm's running mean/var are buffers, not parameters); what a slot's channel mean
  told the next layer is lost.
* Empty slots come from Batch.element_valid, not from an all-zero sequence (line 230): an
  element whose 2 kb is all N stays a key here.
* Initialisation: flax with PyTorch's kaiming-uniform weights and zero biases (model/init.py).
* `stem_width`, `tower_widths`, `out_widths` are fields so the `synthetic` variant can be
  narrower; their defaults are the original's.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from seq2exp_jax.model.heads import ExpressionHead
from seq2exp_jax.model.init import torch_linear_init
from seq2exp_jax.model.outputs import ModelOutput

Dtype = Any
ELEMENT_INPUTS = ("element_dna", "element_feat", "element_valid")


def _dense(features: int, dtype: Dtype, name: str) -> nn.Dense:
  return nn.Dense(features, dtype=dtype, kernel_init=torch_linear_init(),
                  bias_init=nn.initializers.zeros, name=name)


def _conv(features: int, kernel: int, dtype: Dtype, name: str, *, padding: str = "SAME",
          dilation: int = 1) -> nn.Conv:
  # 'SAME' pads an even kernel (k8) 3 before / 4 after, as torch's padding='same' does.
  return nn.Conv(features, (kernel,), padding=padding, kernel_dilation=(dilation,),
                 dtype=dtype, kernel_init=torch_linear_init(),
                 bias_init=nn.initializers.zeros, name=name)


class ElementNorm(nn.Module):
  """Each channel normalised over one slot's positions (float32 statistics), then
  BatchNorm's affine `scale` and `bias` per channel (see the module docstring)."""

  eps: float = 1e-5

  @nn.compact
  def __call__(self, x: Float[Array, "Y W C"]) -> Float[Array, "Y W C"]:
    c = x.shape[-1]
    scale = self.param("scale", nn.initializers.ones, (c,))
    bias = self.param("bias", nn.initializers.zeros, (c,))
    x32 = x.astype(jnp.float32)
    mean = x32.mean(axis=1, keepdims=True)
    var = jnp.square(x32 - mean).mean(axis=1, keepdims=True)
    y = (x32 - mean) * jax.lax.rsqrt(var + self.eps) * scale + bias
    return y.astype(x.dtype)


class ElementEncoder(nn.Module):
  """seq_256bp_encoder + conv_out: one 2 kb one-hot sequence -> an out_dim embedding."""

  out_dim: int
  stem_width: int
  tower_widths: tuple[int, ...]
  out_widths: tuple[int, ...]
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, seq: Float[Array, "Y W 4"]) -> Float[Array, "Y D"]:
    x = nn.elu(_conv(self.stem_width, 8, self.dtype, "stem")(seq.astype(self.dtype)))
    for i, width in enumerate(self.tower_widths):
      x = _conv(width, 3, self.dtype, f"tower_{i}")(x)
      x = nn.elu(ElementNorm(name=f"tower_norm_{i}")(x))
      x = nn.max_pool(x, (2,), strides=(2,))
      x = nn.elu(_conv(width, 1, self.dtype, f"tower_res_{i}")(x)) + x
    dilations = (2, 4, 6)[:len(self.out_widths) - 1] + (1,)
    for i, (width, dilation) in enumerate(zip(self.out_widths, dilations)):
      kernel = 1 if i == len(self.out_widths) - 1 else 3
      x = _conv(width, kernel, self.dtype, f"out_{i}", padding="VALID", dilation=dilation)(x)
      x = nn.elu(ElementNorm(name=f"out_norm_{i}")(x))
    channels = x.shape[-1]
    # Linear over the length axis per channel, then flattened channel-major (line 234).
    x = jnp.swapaxes(x, 1, 2)  # (Y, C, W')
    x = nn.elu(_dense(self.out_dim // channels, self.dtype, "out_length")(x))
    return x.reshape(x.shape[0], -1)


class EncoderLayer(nn.Module):
  """MHAttention_encoderLayer: x + MHA(LN(x)), then x + FF(LN(x)) with FF = D -> 4D -> D."""

  d_model: int
  heads: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Float[Array, "B M D"], allowed: Bool[Array, "B M M"]
               ) -> Float[Array, "B M D"]:
    b, m, d = x.shape
    h = nn.LayerNorm(epsilon=1e-5, dtype=self.dtype, name="norm1")(x)
    q, k, v = (_dense(d, self.dtype, n)(h).reshape(b, m, self.heads, d // self.heads)
               for n in ("query", "key", "value"))
    a = jax.nn.dot_product_attention(q, k, v, mask=allowed[:, None])
    x = x + _dense(d, self.dtype, "out_proj")(a.reshape(b, m, d))
    h = nn.LayerNorm(epsilon=1e-5, dtype=self.dtype, name="norm2")(x)
    h = _dense(d, self.dtype, "ff_1")(nn.relu(_dense(4 * d, self.dtype, "ff_0")(h)))
    return x + h


def attention_allowed(valid: Bool[Array, "B M"]) -> Bool[Array, "B M M"]:
  """allowed[b, q, k]: slot k is present and k == q, or q or k is the promoter (slot 0)."""
  m = valid.shape[1]
  idx = jnp.arange(m)
  pattern = (idx[:, None] == idx[None, :]) | (idx[:, None] == 0) | (idx[None, :] == 0)
  return pattern[None] & valid[:, None, :]


class EPInformer(nn.Module):
  """EPInformer_v2 on Batch's element fields (see the module docstring). Defaults: the
  Seq2Exp run's (out_dim 64, 3 layers, 4 heads; CAGE_pred_promo_enhan_inter.yaml 48-50)."""

  out_dim: int = 64
  n_encoder: int = 3
  heads: int = 4
  stem_width: int = 256
  tower_widths: tuple[int, ...] = (128, 64, 64, 128)
  out_widths: tuple[int, ...] = (64, 64, 64, 32)
  head_width: int = 128
  use_rna_feat: bool = True  # useFeat
  center_len: int = 2000  # the promoter slot (TSS +- 1 kb), for Task's mask ratio
  dtype: Dtype = jnp.float32
  remat: bool = False

  def __post_init__(self):
    if min(self.out_dim, self.n_encoder, self.heads, self.stem_width, self.head_width) < 1:
      raise ValueError("EPInformer: out_dim, n_encoder, heads, stem_width, head_width must "
                       "be >= 1")
    if not self.tower_widths or len(self.out_widths) not in (2, 3, 4):
      raise ValueError(f"EPInformer: tower_widths={self.tower_widths}, out_widths="
                       f"{self.out_widths}: expected >= 1 stage and 2-4 conv_out layers")
    if self.out_dim % self.out_widths[-1] or self.out_dim % self.heads:
      raise ValueError(f"EPInformer: out_dim={self.out_dim} must be a multiple of "
                       f"out_widths[-1]={self.out_widths[-1]} and of heads={self.heads}")
    super().__post_init__()

  @property
  def extra_inputs(self) -> tuple[str, ...]:
    """The candidate elements' sequence, features and presence."""
    return ELEMENT_INPUTS

  @nn.compact
  def __call__(self, dna: Float[Array, "B L 4"], signals: Float[Array, "B L S"],
               rna_feat: Float[Array, "B F"], blacklist: Bool[Array, "B L"] | None = None, *,
               train: bool = False, mask: Float[Array, "B L"] | None = None,
               element_dna: Float[Array, "B M W 4"] | None = None,
               element_feat: Float[Array, "B M G"] | None = None,
               element_valid: Bool[Array, "B M"] | None = None) -> ModelOutput:
    """The per-base window (dna, signals, blacklist) is not read; nothing is random, so
    `train` changes nothing; a fixed `mask` is refused."""
    del dna, signals, blacklist, train
    if mask is not None:
      raise ValueError("EPInformer reads candidate elements: it takes no mask")
    if element_dna is None or element_feat is None or element_valid is None:
      raise ValueError(f"EPInformer needs the batch's {ELEMENT_INPUTS}")
    b, m, w, _ = element_dna.shape
    encoder_cls = nn.remat(ElementEncoder) if self.remat else ElementEncoder
    encoder = encoder_cls(self.out_dim, self.stem_width, tuple(self.tower_widths),
                          tuple(self.out_widths), self.dtype, name="seq_encoder")
    x = encoder(element_dna.reshape(b * m, w, 4)).reshape(b, m, self.out_dim)
    x = jnp.concatenate([x, element_feat.astype(x.dtype)], -1)
    x = nn.relu(_dense(self.out_dim, self.dtype, "add_pos_0")(x))
    x = nn.relu(_dense(self.out_dim, self.dtype, "add_pos_1")(x))
    allowed = attention_allowed(element_valid.astype(bool))
    for i in range(self.n_encoder):
      x = EncoderLayer(self.out_dim, self.heads, self.dtype, name=f"attn_{i}")(x, allowed)
    head = ExpressionHead(self.head_width, dtype=self.dtype, use_rna_feat=self.use_rna_feat,
                          name="pToExpr")
    return ModelOutput.unmasked(head(x[:, 0], rna_feat))
