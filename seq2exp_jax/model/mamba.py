"""Mamba v1 mixer (mamba-ssm 1.1.2 `Mamba`) and Caduceus's weight-tied bidirectional Mamba.

Parameter names follow the PyTorch module so the weight import is a renaming: `in_proj`,
`out_proj` (Dense, no bias), and the per-direction selective SSM `conv1d`, `x_proj`,
`dt_proj`, `A_log`, `D`. Initialisation follows mamba-ssm (and the HF `post_init` of the
models that use it): see `model/init.py` and tests/data/GOLDEN_README.md, "Initialisation".
Every setting comes from one `SSMConfig`.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from seq2exp_jax.model import scan as scan_lib
from seq2exp_jax.model.init import (a_log_init, dt_bias_init, scaled_init, symmetric_uniform,
                                    torch_linear_init)
from seq2exp_jax.model.layers import CausalDepthwiseConv
from seq2exp_jax.model.ssm_config import SSMConfig


class DtProjection(nn.Module):
  """`dt_proj`: Linear(R -> E) whose bias is returned apart, to be added inside the scan
  before the softplus (the fused kernel's `delta_bias`). Params `kernel` (R, E), `bias`."""

  config: SSMConfig

  @nn.compact
  def __call__(self, dt: Float[Array, "B L R"]
               ) -> tuple[Float[Array, "B L E"], Float[Array, "E"]]:
    """Returns (dt @ kernel in float32, bias)."""
    c = self.config
    rank = c.resolved_dt_rank
    kernel = self.param("kernel", symmetric_uniform(rank ** -0.5), (rank, c.d_inner))
    bias = self.param("bias", dt_bias_init(c.dt_min, c.dt_max, c.dt_init_floor),
                      (c.d_inner,))
    return dt.astype(jnp.float32) @ kernel, jnp.asarray(bias)


class SelectiveSSM(nn.Module):
  """One direction of Mamba between in_proj and out_proj: conv, SSM, skip and gate.

  Holds the parameters that Caduceus does not tie across directions: `conv1d`, `x_proj`,
  `dt_proj`, `A_log` (E, N) and `D` (E,).
  """

  config: SSMConfig

  @nn.compact
  def __call__(self, x: Float[Array, "B L E"], z: Float[Array, "B L E"]
               ) -> Float[Array, "B L E"]:
    """x, z: halves of in_proj's output -> (y + D x) * SiLU(z).

    The step sizes softplus(dt_proj(dt) + bias), the skip and the gate are fused into the
    scan (mamba-ssm's `selective_scan_fn(..., D, z, delta_bias, delta_softplus=True)`), so
    the backward pass keeps only the scan's inputs.
    """
    c = self.config
    e, n, r = c.d_inner, c.d_state, c.resolved_dt_rank
    x = nn.silu(CausalDepthwiseConv(c.d_conv, dtype=c.dtype, name="conv1d")(x))
    x_proj = nn.Dense(r + 2 * n, use_bias=False, dtype=c.dtype,
                      kernel_init=torch_linear_init(), name="x_proj")
    x_dbl = x_proj(x)
    dt, b, cm = jnp.split(x_dbl, [r, r + n], axis=-1)
    dt, dt_bias = DtProjection(c, name="dt_proj")(dt)
    a_log = self.param("A_log", a_log_init, (e, n))
    skip = self.param("D", nn.initializers.ones, (e,))
    y = scan_lib.selective_scan(x, dt, -jnp.exp(a_log), b, cm, D=skip, z=z,
                                delta_bias=dt_bias, delta_softplus=True,
                                method=c.scan_method, chunk_size=c.chunk_size)
    # The original's names, for the golden comparison (no-ops unless asked for).
    self.sow("intermediates", "x_after_conv_silu", x)
    self.sow("intermediates", "x_dbl", x_dbl)
    self.sow("intermediates", "y_scan_gated", y)
    return y.astype(c.dtype)


def _projections(config: SSMConfig, out_proj_scale: float) -> tuple[nn.Dense, nn.Dense]:
  in_proj = nn.Dense(2 * config.d_inner, use_bias=False, dtype=config.dtype,
                     kernel_init=torch_linear_init(), name="in_proj")
  out_proj = nn.Dense(config.d_model, use_bias=False, dtype=config.dtype, name="out_proj",
                      kernel_init=scaled_init(torch_linear_init(), out_proj_scale))
  return in_proj, out_proj


class Mamba(nn.Module):
  """Unidirectional Mamba mixer. Params: in_proj, out_proj, ssm/{conv1d,x_proj,dt_proj,...}.

  out_proj_scale: 1/sqrt(n_layer) of mamba-ssm's post_init (set by the backbone).
  """

  config: SSMConfig
  out_proj_scale: float = 1.0

  @nn.compact
  def __call__(self, u: Float[Array, "B L D"], lengths: Int[Array, "B"] | None = None
               ) -> Float[Array, "B L D"]:
    """`lengths` is accepted for BiMamba's interface: a causal mixer never reads the padding
    that follows a row's first lengths[b] positions."""
    del lengths
    in_proj, out_proj = _projections(self.config, self.out_proj_scale)
    x, z = jnp.split(in_proj(u), 2, axis=-1)
    return out_proj(SelectiveSSM(self.config, name="ssm")(x, z))


def reverse_rows(x: Float[Array, "B L C"], lengths: Int[Array, "B"] | None
                 ) -> Float[Array, "B L C"]:
  """Reverse the sequence axis, or with `lengths` only each row's first lengths[b] positions
  (the rest, padding, stays in place). Either is its own inverse."""
  if lengths is None:
    return jnp.flip(x, axis=1)
  t = jnp.arange(x.shape[1])
  n = lengths[:, None]
  return jnp.take_along_axis(x, jnp.where(t < n, n - 1 - t, t)[..., None], axis=1)


class BiMamba(nn.Module):
  """Caduceus BiMambaWrapper (strategy "add", weight_tie=True).

  out = mamba_fwd(u) + flip(mamba_rev(flip(u))). The two directions share in_proj and
  out_proj (neither has a bias), so in_proj runs once and its output is flipped, and the
  two gated outputs are summed before the one out_proj: the same maths, half the matmuls.
  With `lengths` (packed rows followed by padding) the reverse direction flips only each
  row's first lengths[b] positions, so it reads them before the padding: no real position's
  output depends on how much padding follows (`reverse_rows`).
  """

  config: SSMConfig
  out_proj_scale: float = 1.0

  @nn.compact
  def __call__(self, u: Float[Array, "B L D"], lengths: Int[Array, "B"] | None = None
               ) -> Float[Array, "B L D"]:
    in_proj, out_proj = _projections(self.config, self.out_proj_scale)
    xz = in_proj(u)
    y_fwd = SelectiveSSM(self.config, name="mamba_fwd")(*jnp.split(xz, 2, axis=-1))
    y_rev = SelectiveSSM(self.config, name="mamba_rev")(
        *jnp.split(reverse_rows(xz, lengths), 2, axis=-1))
    return out_proj(y_fwd + reverse_rows(y_rev, lengths))
