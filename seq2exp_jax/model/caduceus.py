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

import flax.linen as nn
from jaxtyping import Array, Float, Int

from seq2exp_jax.model.mamba import BiMamba, Mamba
from seq2exp_jax.model.ssm_config import SSMConfig

# config.bidirectional -> the mixer of every block.
MIXERS = {True: BiMamba, False: Mamba}


class Block(nn.Module):
  """One pre-norm residual block on the residual stream: s -> s + mixer(RMSNorm(s)).

  The original carries (hidden, residual) and adds them at the next block; carrying their
  sum instead is the same arithmetic (IEEE addition commutes) and keeps one (B, L, D) array
  per layer for the backward pass instead of two.
  """

  config: SSMConfig
  out_proj_scale: float = 1.0

  @nn.compact
  def __call__(self, residual: Float[Array, "B L D"], lengths: Int[Array, "B"] | None = None
               ) -> tuple[Float[Array, "B L D"], None]:
    """Returns (next residual, None): the form `nn.scan` needs. `lengths`: see Caduceus."""
    c = self.config
    normed = nn.RMSNorm(epsilon=c.norm_epsilon, dtype=c.dtype, name="norm")(residual)
    hidden = MIXERS[c.bidirectional](c, self.out_proj_scale, name="mixer")(normed, lengths)
    # The original's (hidden_states, residual) of this block, for the golden comparison.
    self.sow("intermediates", "hidden_states_out", hidden)
    self.sow("intermediates", "residual_out", residual)
    return hidden + residual, None


class Caduceus(nn.Module):
  """A stack of `n_layer` blocks with the final add + RMSNorm, all set by one `SSMConfig`
  (`config.bidirectional`: Caduceus's BiMamba, or unidirectional Mamba blocks).

  The blocks run as one `nn.scan` over layers, with params stacked on a leading layer axis
  (`layers/...`, shape (n_layer, ...)): the backward pass then walks the layers one at a
  time, so with `config.remat` only one block's intermediates are ever live (with the layers
  unrolled, XLA:CPU's scheduler recomputes every block's forward up front and keeps them
  all), and the block compiles once. out_proj is initialised divided by
  sqrt(config.init_n_layer or n_layer) (mamba-ssm, one residual per layer).
  """

  config: SSMConfig
  n_layer: int

  def __post_init__(self):
    if not isinstance(self.n_layer, int) or self.n_layer < 1:
      raise ValueError(f"Caduceus.n_layer={self.n_layer!r}: expected a positive integer")
    super().__post_init__()

  @nn.compact
  def __call__(self, embeddings: Float[Array, "B L D"], lengths: Int[Array, "B"] | None = None
               ) -> Float[Array, "B L D"]:
    """`lengths`: each row holds lengths[b] real positions followed by padding (a packed
    sequence); every real position's output is then independent of the padding (BiMamba's
    reverse direction starts at the row's last real position; everything else is causal or
    per position). None: every position is real."""
    c = self.config
    block_cls = nn.remat(Block, prevent_cse=False) if c.remat else Block
    blocks = nn.scan(block_cls, variable_axes={"params": 0, "intermediates": 0},
                     split_rngs={"params": True}, in_axes=nn.broadcast, length=self.n_layer)(
        c, (c.init_n_layer or self.n_layer) ** -0.5, name="layers")
    residual, _ = blocks(embeddings.astype(c.dtype), lengths)
    return nn.RMSNorm(epsilon=c.norm_epsilon, dtype=c.dtype, name="norm_f")(residual)
