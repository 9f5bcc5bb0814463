"""Parameter initialisers of the original PyTorch modules (mamba-ssm and Caduceus).

Where the original keeps PyTorch's defaults, so do we: Linear and Conv1d weights are
kaiming_uniform(a=sqrt(5)), i.e. U(+-1/sqrt(fan_in)). mamba-ssm adds its own for the SSM
(`A_log`, `dt_proj.bias`) and rescales `out_proj` by 1/sqrt(n_layer); see
tests/data/GOLDEN_README.md, "Initialisation".
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp


def torch_linear_init(fan_in_axis: int = -2) -> nn.initializers.Initializer:
  """PyTorch's default Linear/Conv init, kaiming_uniform(a=sqrt(5)): U(+-1/sqrt(fan_in))."""
  return nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform", in_axis=fan_in_axis)


def symmetric_uniform(bound: float) -> nn.initializers.Initializer:
  """U(-bound, bound). A depthwise conv's fan_in is K, so its kernel and bias use 1/sqrt(K)."""
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return init


def scaled_init(init: nn.initializers.Initializer, scale: float
                ) -> nn.initializers.Initializer:
  """`init` multiplied by `scale` (mamba-ssm rescales out_proj by 1/sqrt(n_layer))."""
  def scaled(key, shape, dtype=jnp.float32):
    return init(key, shape, dtype) * scale
  return scaled


def dt_bias_init(dt_min: float = 1e-3, dt_max: float = 0.1, dt_init_floor: float = 1e-4
                 ) -> nn.initializers.Initializer:
  """Inverse softplus of dt drawn log-uniformly in [dt_min, dt_max] (floored)."""
  def init(key, shape, dtype=jnp.float32):
    u = jax.random.uniform(key, shape, jnp.float32)
    dt = jnp.exp(u * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
    dt = jnp.maximum(dt, dt_init_floor)
    return (dt + jnp.log(-jnp.expm1(-dt))).astype(dtype)
  return init


def a_log_init(key, shape, dtype=jnp.float32):
  """A_log = log(1..N) in every row; shape (E, N)."""
  del key
  return jnp.broadcast_to(jnp.log(jnp.arange(1, shape[1] + 1, dtype=jnp.float32)),
                          shape).astype(dtype)
