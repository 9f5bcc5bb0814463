"""The backbone registry: every model (Seq2Exp's generator and predictor, the baselines)
builds its backbone here from a config, so one config type per family sets everything.

    config = backbone_config("caduceus", d_model=128, d_state=16)   # an SSMConfig
    module = build_backbone(config, n_layer=4, name="encoder")      # a Caduceus

Kinds: "caduceus" (weight-tied BiMamba blocks), "mamba" (unidirectional Mamba blocks), both
`SSMConfig`; "hyena" (HyenaDNA blocks), `HyenaConfig`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Union

import flax.linen as nn

from seq2exp_jax.model.caduceus import Caduceus
from seq2exp_jax.model.hyena import HyenaBackbone, HyenaConfig
from seq2exp_jax.model.ssm_config import SSMConfig

BackboneConfig = Union[SSMConfig, HyenaConfig]

# kind -> the config it is built from (with the fields the kind fixes).
BACKBONES: dict[str, Callable[..., BackboneConfig]] = {
    "caduceus": functools.partial(SSMConfig, bidirectional=True),
    "mamba": functools.partial(SSMConfig, bidirectional=False),
    "hyena": HyenaConfig,
}
# config type -> backbone module, constructed as Module(config, n_layer).
MODULES: dict[type, type[nn.Module]] = {SSMConfig: Caduceus, HyenaConfig: HyenaBackbone}


def fields_of(kind: str) -> tuple[str, ...]:
  """The settings a backbone of `kind` takes (those the kind fixes left out)."""
  factory = BACKBONES[kind]
  fixed = getattr(factory, "keywords", {})
  cls = getattr(factory, "func", factory)
  return tuple(f.name for f in dataclasses.fields(cls) if f.name not in fixed)


def backbone_config(kind: str, **settings: Any) -> BackboneConfig:
  """The config of a `kind` backbone; an unknown kind or setting is refused by name."""
  if kind not in BACKBONES:
    raise ValueError(f"backbone kind {kind!r}: expected one of {sorted(BACKBONES)}")
  unknown = sorted(set(settings) - set(fields_of(kind)))
  if unknown:
    raise ValueError(f"backbone {kind!r}: unknown setting(s) {unknown}; it takes "
                     f"{sorted(fields_of(kind))}")
  return BACKBONES[kind](**settings)


def build_backbone(config: BackboneConfig, n_layer: int, name: str | None = None
                   ) -> nn.Module:
  """The backbone module of `config` with `n_layer` blocks: (B, L, D) -> (B, L, D)."""
  return MODULES[type(config)](config, n_layer, name=name)
