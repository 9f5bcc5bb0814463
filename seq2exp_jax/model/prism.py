"""Prism (Yang, Duan, Zhu, Ba, Cao, Su, *Extending Sequence Length is Not All You Need:
Effective Integration of Multimodal Signals for Gene Expression Prediction*, ICLR 2026), as
its repository yangzhao1230/Prism defines it (src/models/sequence/GeneExpformer.py,
`Prism`, lines 71-197; the loss in src/tasks/metrics.py lines 323-360).

A short window (2 kb centred on the TSS, train_example.sh lines 12 and 41; the loader's
crop, `data.window`) of one-hot DNA and the three signal tracks (raw H3K27ac, raw DNase,
log10(1 + Hi-C), promo_enhan_inter.py lines 517-537: our `signals`):

    e_seq = Linear(4 -> D)(dna), e_sig = Linear(S -> D)(signals)
    prediction   = head(pool(Caduceus(e_seq + e_sig)))                       (lines 182-187)

and, in training, the backdoor adjustment: the signal encoder (prism_signal.py) turns the
window's signals into n_context weight vectors w_k over the width D, one per "context"
(the confounder strata), and the same Caduceus reads the input under each of them

    h_k = Caduceus(e_seq + e_sig * w_k),   k = 1..n                          (lines 146-160)
    intervention = head(pool(mean_k h_k))   (a uniform average over the strata, 164)

in one batch of B (1 + n) sequences (the unweighted input is context 0). The loss
(metrics.py 340-359, weights from train_example.sh lines 18-19, 44-46):

    smooth_l1(prediction, y) + intervention_loss_weight * smooth_l1(intervention, y)
                             + uniform_loss_weight * uniform_loss(w)

`PrismOutput.extra_loss(target)` gives the last two terms. Evaluation predicts with
`prediction` alone (the original's metrics read `logits`, tasks.py 235-240), so at
evaluation the contexts are not run: same prediction, 1/(1 + n) of the compute, and no
prediction depends on the signal encoder's BatchNorm (which normalises by the training
batch; prism_signal.py). With intervention_loss_weight 0 there is no signal encoder and no
extra term (lines 83-90, 165-173). No dropout and no sampling anywhere.

The backbone: Caduceus (configs/model/prism.yaml lines 50-54: bidirectional, "add", weight
tie, no RCPS; RMSNorm, residual not in fp32; ssm_cfg lines 24-36 = SSMConfig's defaults;
n_layer 4, so out_proj initialised for 4 layers), fed embeddings (`ignore_embed_layer`).
pool: the mean over the central `center_len` positions (2,000 = the whole window); head:
the shared ExpressionHead (pToExpr, lines 92-98). Params: `seq_input_layer`,
`signal_input_layer`, `weight_generator/...`, `caduceus/...`, `pToExpr/...`.
"""

from __future__ import annotations

import typing

import flax.linen as nn
import flax.struct
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from seq2exp_jax.model.backbones import build_backbone
from seq2exp_jax.model.heads import ExpressionHead
from seq2exp_jax.model.layers import input_dense
from seq2exp_jax.model.losses import smooth_l1
from seq2exp_jax.model.outputs import ModelOutput
from seq2exp_jax.model.prism_signal import SignalWeightGenerator, uniform_loss
from seq2exp_jax.model.promoter import promoter_mean
from seq2exp_jax.model.ssm_config import SSMConfig


# A pytree dataclass, rebuilt by JAX transformations with leaves that are not arrays
# (ShapeDtypeStructs under eval_shape): its field annotations document shapes, unchecked,
# as outputs.py's (tests/conftest.py leaves that module out of the run-time checks).
@flax.struct.dataclass
@typing.no_type_check
class PrismOutput(ModelOutput):
  """A ModelOutput with Prism's training-only terms (None at evaluation).

  intervention: the backdoor-adjusted prediction (B,); uniform: the uniform loss of the
  context weights; weights: (B, D, Q), the signal encoder's output (Q = n_context).
  """

  intervention: Float[Array, "B"] | None = None
  uniform: Float[Array, ""] | None = None
  weights: Float[Array, "B D Q"] | None = None
  intervention_weight: float = flax.struct.field(pytree_node=False, default=0.0)
  uniform_weight: float = flax.struct.field(pytree_node=False, default=0.0)

  def extra_loss(self, target: Float[Array, "B"]) -> dict[str, Float[Array, ""]]:
    """The weighted terms Prism's loss adds to smooth_l1(prediction, target): named
    "intervention" and "uniform"; none at evaluation or without the signal encoder."""
    if self.intervention is None:
      return {}
    return {"intervention": self.intervention_weight * smooth_l1(self.intervention, target),
            "uniform": self.uniform_weight * self.uniform}


class Prism(nn.Module):
  """Caduceus on DNA + signal embeddings, trained with the signal-conditioned backdoor
  adjustment (module docstring). Fields as configs/model/prism.yaml and train_example.sh
  name them."""

  backbone: SSMConfig = SSMConfig()
  n_layer: int = 4
  center_len: int = 2000
  n_context: int = 2
  cnn_dim: int = 8
  weight_act: str = "sigmoid"
  gaussian_kernel_t: float = 2.0
  intervention_loss_weight: float = 1.0
  uniform_loss_weight: float = 1.0
  use_rna_feat: bool = True  # useRNAFeat

  def __post_init__(self):
    if not isinstance(self.backbone, SSMConfig) or not self.backbone.bidirectional:
      raise ValueError("Prism: backbone must be kind 'caduceus' (prism.yaml: bidirectional)")
    if self.n_layer < 1 or self.center_len < 1 or self.n_context < 1:
      raise ValueError(f"Prism: n_layer={self.n_layer}, center_len={self.center_len}, "
                       f"n_context={self.n_context}: expected >= 1")
    if self.intervention_loss_weight < 0 or self.uniform_loss_weight < 0:
      raise ValueError("Prism: intervention_loss_weight and uniform_loss_weight must be >= 0")
    super().__post_init__()

  @property
  def extra_inputs(self) -> tuple[str, ...]:
    """Batch fields beyond dna, signals, rna_feat and blacklist: none."""
    return ()

  @property
  def adjusts(self) -> bool:
    """Whether the backdoor adjustment (and its signal encoder) exists."""
    return self.intervention_loss_weight != 0

  def setup(self):
    c = self.backbone
    self.seq_input_layer = input_dense(c.d_model, c.dtype, "seq_input_layer")
    self.signal_input_layer = input_dense(c.d_model, c.dtype, "signal_input_layer")
    if self.adjusts:
      self.weight_generator = SignalWeightGenerator(
          c.d_model, self.n_context, self.cnn_dim, self.weight_act, c.dtype)
    self.caduceus = build_backbone(c, self.n_layer, c.kind)
    self.pToExpr = ExpressionHead(c.d_model, dtype=c.dtype, use_rna_feat=self.use_rna_feat)

  def embed(self, dna: Float[Array, "B L 4"], signals: Float[Array, "B L S"]
            ) -> tuple[Float[Array, "B L D"], Float[Array, "B L D"]]:
    """(e_seq, e_sig)."""
    return self.seq_input_layer(dna), self.signal_input_layer(signals.astype(dna.dtype))

  def contexts(self, e_seq: Float[Array, "B L D"], e_sig: Float[Array, "B L D"],
               weights: Float[Array, "B D Q"]) -> Float[Array, "B Q+1 L D"]:
    """The backbone's inputs per context (Q = n_context): e_seq + e_sig (context 0), then
    e_seq + e_sig * w_k (lines 145-151)."""
    ones = jnp.ones_like(weights[:, :, :1])
    w = jnp.concatenate([ones, weights], axis=-1).astype(e_sig.dtype)  # (B, D, Q + 1)
    return e_seq[:, None] + e_sig[:, None] * jnp.moveaxis(w, -1, 1)[:, :, None]

  def predict(self, hidden: Float[Array, "B L D"], rna_feat: Float[Array, "B F"]
              ) -> Float[Array, "B"]:
    """The head on the mean over the central `center_len` positions."""
    return self.pToExpr(promoter_mean(hidden, self.center_len), rna_feat)

  def __call__(self, dna: Float[Array, "B L 4"], signals: Float[Array, "B L S"],
               rna_feat: Float[Array, "B F"], blacklist: Bool[Array, "B L"] | None = None, *,
               train: bool = False, mask: Float[Array, "B L"] | None = None) -> PrismOutput:
    """`blacklist` changes nothing (the original never reads it); a fixed `mask` is
    refused. Training (or init) runs the n contexts too; evaluation only context 0."""
    del blacklist
    if mask is not None:
      raise ValueError("Prism reads the whole window: it takes no mask")
    e_seq, e_sig = self.embed(dna, signals)
    if not (self.adjusts and (train or self.is_initializing())):
      return PrismOutput.unmasked(self.predict(self.caduceus(e_seq + e_sig), rna_feat))
    weights = self.weight_generator(signals)
    x = self.contexts(e_seq, e_sig, weights)
    b, n, length, d = x.shape
    hidden = self.caduceus(x.reshape(b * n, length, d)).reshape(b, n, length, d)
    out = PrismOutput.unmasked(self.predict(hidden[:, 0], rna_feat))
    return out.replace(
        intervention=self.predict(jnp.mean(hidden[:, 1:], axis=1), rna_feat),
        uniform=uniform_loss(weights, self.gaussian_kernel_t), weights=weights,
        intervention_weight=float(self.intervention_loss_weight),
        uniform_weight=float(self.uniform_loss_weight))
