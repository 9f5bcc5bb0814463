"""Mamba v1 mixer (mamba-ssm 1.1.2 `Mamba`) and Caduceus's weight-tied bidirectional Mamba.

Parameter names follow the PyTorch module so the weight import is a renaming: `in_proj`,
`out_proj` (Dense, no bias), and the per-direction selective SSM `conv1d`, `x_proj`,
`dt_proj`, `A_log`, `D`. Initialisation follows mamba-ssm (and the HF `post_init` of the
models that use it): see `shared/golden/README.md`, "Initialisation".
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from seq2exp_jax.model import scan as scan_lib

Dtype = Any


def torch_linear_init(fan_in_axis: int = -2):
  """PyTorch's default Linear/Conv init, kaiming_uniform(a=sqrt(5)): U(+-1/sqrt(fan_in))."""
  return nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform", in_axis=fan_in_axis)


def symmetric_uniform(bound: float):
  """U(-bound, bound). The depthwise conv's fan_in is K, so its kernel and bias use 1/sqrt(K)."""
  def f(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return f


def scaled_init(init, scale: float):
  """`init` multiplied by `scale` (mamba-ssm rescales out_proj by 1/sqrt(n_layer))."""
  def f(key, shape, dtype=jnp.float32):
    return init(key, shape, dtype) * scale
  return f


def dt_bias_init(dt_min: float = 1e-3, dt_max: float = 0.1, dt_init_floor: float = 1e-4):
  """Inverse softplus of dt drawn log-uniformly in [dt_min, dt_max] (floored)."""
  def f(key, shape, dtype=jnp.float32):
    u = jax.random.uniform(key, shape, jnp.float32)
    dt = jnp.exp(u * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
    dt = jnp.maximum(dt, dt_init_floor)
    return (dt + jnp.log(-jnp.expm1(-dt))).astype(dtype)
  return f


def a_log_init(key, shape, dtype=jnp.float32):
  """A_log = log(1..N) in every row; shape (E, N)."""
  del key
  return jnp.broadcast_to(jnp.log(jnp.arange(1, shape[1] + 1, dtype=jnp.float32)),
                          shape).astype(dtype)


class CausalDepthwiseConv(nn.Module):
  """Depthwise causal conv (PyTorch Conv1d(groups=E, padding=K-1), first L outputs).

  Params: `kernel` (K, E) where kernel[K-1] multiplies the current step (cross-correlation,
  the PyTorch layout transposed), `bias` (E,).
  """

  features: int
  kernel_size: int = 4
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    """x: (B, L, E) -> (B, L, E)."""
    k = self.kernel_size
    kernel = self.param("kernel", symmetric_uniform(1 / math.sqrt(k)), (k, self.features))
    bias = self.param("bias", symmetric_uniform(1 / math.sqrt(k)), (self.features,))
    x = x.astype(self.dtype)
    padded = jnp.pad(x, ((0, 0), (k - 1, 0), (0, 0)))
    length = x.shape[1]
    out = bias.astype(self.dtype)
    for i in range(k):
      out = out + padded[:, i:i + length] * kernel[i].astype(self.dtype)
    return out


class SelectiveSSM(nn.Module):
  """One direction of Mamba between in_proj and out_proj: conv, SSM, skip and gate.

  Holds the parameters that Caduceus does not tie across directions: `conv1d`, `x_proj`,
  `dt_proj`, `A_log` (E, N) and `D` (E,).
  """

  d_inner: int
  d_state: int = 16
  d_conv: int = 4
  dt_rank: int = 1
  dt_min: float = 1e-3
  dt_max: float = 0.1
  dt_init_floor: float = 1e-4
  scan_method: str = "chunked"
  chunk_size: int = scan_lib.DEFAULT_CHUNK_SIZE
  dtype: Dtype = jnp.float32

  def setup(self):
    e, n, r = self.d_inner, self.d_state, self.dt_rank
    self.conv1d = CausalDepthwiseConv(e, self.d_conv, dtype=self.dtype)
    self.x_proj = nn.Dense(r + 2 * n, use_bias=False, dtype=self.dtype,
                           kernel_init=torch_linear_init())
    self.dt_proj = DtProjection(e, r, self.dt_min, self.dt_max, self.dt_init_floor)
    self.A_log = self.param("A_log", a_log_init, (e, n))
    self.D = self.param("D", nn.initializers.ones, (e,))

  def __call__(self, x, z):
    """x, z: (B, L, E) halves of in_proj's output -> (y + D x) * SiLU(z), (B, L, E).

    The step sizes softplus(dt_proj(dt) + bias), the skip and the gate are fused into the
    scan (mamba-ssm's `selective_scan_fn(..., D, z, delta_bias, delta_softplus=True)`), so
    the backward pass keeps only the scan's inputs.
    """
    r, n = self.dt_rank, self.d_state
    x = nn.silu(self.conv1d(x))
    dt, b, c = jnp.split(self.x_proj(x), [r, r + n], axis=-1)
    dt, dt_bias = self.dt_proj(dt)
    y = scan_lib.selective_scan(x, dt, -jnp.exp(self.A_log), b, c, D=self.D, z=z,
                                delta_bias=dt_bias, delta_softplus=True,
                                method=self.scan_method, chunk_size=self.chunk_size)
    return y.astype(self.dtype)


class DtProjection(nn.Module):
  """`dt_proj`: Linear(R -> E) whose bias is returned apart, to be added inside the scan
  before the softplus (the fused kernel's `delta_bias`). Params `kernel` (R, E), `bias`."""

  features: int
  rank: int
  dt_min: float = 1e-3
  dt_max: float = 0.1
  dt_init_floor: float = 1e-4

  @nn.compact
  def __call__(self, dt):
    """dt: (B, L, R) -> (dt @ kernel (B, L, E) float32, bias (E,))."""
    kernel = self.param("kernel", symmetric_uniform(self.rank ** -0.5),
                        (self.rank, self.features))
    bias = self.param("bias", dt_bias_init(self.dt_min, self.dt_max, self.dt_init_floor),
                      (self.features,))
    return dt.astype(jnp.float32) @ kernel, bias


def ssm_kwargs(module) -> dict:
  """The SelectiveSSM settings shared by `Mamba` and `BiMamba`."""
  return dict(d_inner=module.expand * module.d_model, d_state=module.d_state,
              d_conv=module.d_conv, dt_rank=module.resolved_dt_rank, dt_min=module.dt_min,
              dt_max=module.dt_max, dt_init_floor=module.dt_init_floor,
              scan_method=module.scan_method, chunk_size=module.chunk_size,
              dtype=module.dtype)


class _MambaConfig(nn.Module):
  """Settings shared by the uni- and bidirectional mixers."""

  d_model: int
  d_state: int = 16
  d_conv: int = 4
  expand: int = 2
  dt_rank: int | None = None  # None: ceil(d_model / 16), mamba-ssm's "auto"
  dt_min: float = 1e-3
  dt_max: float = 0.1
  dt_init_floor: float = 1e-4
  out_proj_scale: float = 1.0  # 1/sqrt(n_residuals_per_layer * n_layer) of post_init
  scan_method: str = "chunked"
  chunk_size: int = scan_lib.DEFAULT_CHUNK_SIZE
  dtype: Dtype = jnp.float32

  @property
  def resolved_dt_rank(self) -> int:
    return self.dt_rank or math.ceil(self.d_model / 16)

  def projections(self):
    d_inner = self.expand * self.d_model
    in_proj = nn.Dense(2 * d_inner, use_bias=False, dtype=self.dtype,
                       kernel_init=torch_linear_init(), name="in_proj")
    out_proj = nn.Dense(self.d_model, use_bias=False, dtype=self.dtype, name="out_proj",
                        kernel_init=scaled_init(torch_linear_init(), self.out_proj_scale))
    return in_proj, out_proj


class Mamba(_MambaConfig):
  """Unidirectional Mamba mixer. Params: in_proj, out_proj, ssm/{conv1d,x_proj,dt_proj,...}."""

  @nn.compact
  def __call__(self, u):
    """u: (B, L, D) -> (B, L, D)."""
    in_proj, out_proj = self.projections()
    x, z = jnp.split(in_proj(u), 2, axis=-1)
    return out_proj(SelectiveSSM(**ssm_kwargs(self), name="ssm")(x, z))


class BiMamba(_MambaConfig):
  """Caduceus BiMambaWrapper (strategy "add", weight_tie=True).

  out = mamba_fwd(u) + flip(mamba_rev(flip(u))). The two directions share in_proj and
  out_proj (neither has a bias), so in_proj runs once and its output is flipped, and the
  two gated outputs are summed before the one out_proj: the same maths, half the matmuls.
  """

  @nn.compact
  def __call__(self, u):
    """u: (B, L, D) -> (B, L, D)."""
    in_proj, out_proj = self.projections()
    xz = in_proj(u)
    y_fwd = SelectiveSSM(**ssm_kwargs(self), name="mamba_fwd")(*jnp.split(xz, 2, axis=-1))
    y_rev = SelectiveSSM(**ssm_kwargs(self), name="mamba_rev")(
        *jnp.split(jnp.flip(xz, axis=1), 2, axis=-1))
    return out_proj(y_fwd + jnp.flip(y_rev, axis=1))
