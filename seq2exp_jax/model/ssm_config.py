"""`SSMConfig`: every setting of a Mamba (v1) backbone, in one frozen dataclass.

The selective SSM, the mixers, the residual block and the backbone all read the one config
they are given instead of re-declaring its fields, so a setting (say `dt_max`) is set in
one place and reaches every layer. Field names follow mamba-ssm and Caduceus.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax.numpy as jnp

from seq2exp_jax.model.scan import DEFAULT_CHUNK_SIZE, SCAN_METHODS


@dataclasses.dataclass(frozen=True)
class SSMConfig:
  """Settings of a stack of Mamba blocks.

  Attributes:
    d_model: D, the residual-stream width.
    d_state: N, the SSM state size per channel.
    d_conv: K, the depthwise causal conv's kernel.
    expand: E = expand * D, the mixer's inner width.
    dt_rank: R, the rank of the step-size projection; None is mamba-ssm's "auto",
      ceil(D / 16).
    dt_min, dt_max, dt_init_floor: the log-uniform range of the initial step sizes.
    norm_epsilon: RMSNorm epsilon.
    bidirectional: Caduceus's weight-tied BiMamba (True) or a unidirectional Mamba.
    init_n_layer: the depth mamba-ssm divides out_proj's init by (its square root); None is
      the backbone's own depth. The original Seq2Exp never sets it, so its value there is
      CaduceusConfig's default 64.
    scan_method: a key of `scan.SCAN_METHODS`; "auto" (the default) is resolved when the
      scan runs, by the backend it runs on (`scan.default_method()`: the fused Pallas
      kernels on GPU, the chunked scan on CPU and TPU), so one config trains anywhere.
    chunk_size: T, positions per chunk of the chunked scan (between the saved states of
      the Pallas one).
    remat: recompute each block in the backward pass (memory O(L D) per block).
    dtype: the compute dtype of the matmuls and convs (params stay float32; the scan
      runs in float32).
  """

  d_model: int = 128
  d_state: int = 16
  d_conv: int = 4
  expand: int = 2
  dt_rank: int | None = None
  dt_min: float = 1e-3
  dt_max: float = 0.1
  dt_init_floor: float = 1e-4
  norm_epsilon: float = 1e-5
  bidirectional: bool = True
  init_n_layer: int | None = None
  scan_method: str = "auto"
  chunk_size: int = DEFAULT_CHUNK_SIZE
  remat: bool = False
  dtype: Any = jnp.float32

  def __post_init__(self):
    positive = {"d_model": self.d_model, "d_state": self.d_state, "d_conv": self.d_conv,
                "expand": self.expand, "chunk_size": self.chunk_size,
                "dt_rank": 1 if self.dt_rank is None else self.dt_rank,
                "init_n_layer": 1 if self.init_n_layer is None else self.init_n_layer}
    for name, value in positive.items():
      if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"SSMConfig.{name}={value!r}: expected a positive integer")
    if not 0 < self.dt_min <= self.dt_max:
      raise ValueError(f"SSMConfig.dt_min={self.dt_min}, dt_max={self.dt_max}: expected "
                       "0 < dt_min <= dt_max")
    if self.scan_method not in SCAN_METHODS:
      raise ValueError(f"SSMConfig.scan_method={self.scan_method!r}: expected one of "
                       f"{sorted(SCAN_METHODS)}")

  @property
  def kind(self) -> str:
    """The backbone's name in `backbones.BACKBONES`."""
    return "caduceus" if self.bidirectional else "mamba"

  @property
  def d_inner(self) -> int:
    """E."""
    return self.expand * self.d_model

  @property
  def resolved_dt_rank(self) -> int:
    """R."""
    return self.dt_rank or math.ceil(self.d_model / 16)
