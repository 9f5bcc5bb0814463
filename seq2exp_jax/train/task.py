"""What a config trains: the model, where the predictor's mask comes from, and the loss.

`Task.apply` is the one forward function of training, evaluation, prediction and export,
so the four cannot drift apart. Every model takes the same inputs and returns a
`ModelOutput`, so a Task never asks which model it holds. Batches are
`data_pipeline.batch.Batch`es, already cropped to the window the model reads.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
from jaxtyping import Array, Float

from data_pipeline.errors import ConfigError
from data_pipeline.batch import Batch
from seq2exp_jax.model.backbones import backbone_config
from seq2exp_jax.model.baselines import GeneExpModel
from seq2exp_jax.model.beta_mask import BetaMask
from seq2exp_jax.model.losses import mask_ratio, smooth_l1
from seq2exp_jax.model.outputs import ModelOutput
from seq2exp_jax.model.seq2exp import Seq2Exp

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
# model.name -> its module: a class, or "module:Class" imported when first built (the rows
# that do not share Seq2Exp's backbone registry: EPInformer, Enformer, Prism).
MODELS: dict[str, type[nn.Module] | str] = {
    "seq2exp": Seq2Exp, "baseline": GeneExpModel,
    "epinformer": "seq2exp_jax.model.epinformer:EPInformer",
    "enformer": "seq2exp_jax.model.enformer:Enformer",
    "prism": "seq2exp_jax.model.prism:Prism"}
MASK_SOURCES = ("learned", "peaks", "generator_top")
LOSS_TERMS = ("loss", "huber", "kl", "continuity")
# (frozen params, batch) -> the predictor's fixed mask (B, L)
FixedMask = Callable[[Any, Batch], Float[Array, "B L"]]


def _plain(value: Any) -> Any:
  """ConfigDicts -> dicts, lists -> tuples (config.json stores tuples as lists)."""
  if isinstance(value, (ml_collections.ConfigDict, Mapping)):
    return {k: _plain(v) for k, v in dict(value).items()}
  if isinstance(value, list):
    return tuple(_plain(v) for v in value)
  return value


def build_model(model: Mapping[str, Any], *, dtype: str = "float32", remat: bool = False
                ) -> nn.Module:
  """The flax module of a config's `model` section, computing in `dtype` with `remat`
  (train.dtype, train.remat: how to compute, never part of the model section)."""
  args = _plain(model)
  name = args.pop("name", None)
  if name not in MODELS:
    raise ConfigError(f"model.name {name!r}: expected one of {sorted(MODELS)}")
  if dtype not in DTYPES:
    raise ConfigError(f"train.dtype {dtype!r}: expected one of {sorted(DTYPES)}")
  cls = _model_class(name)
  # dtype and remat, where a model has them, come from train.dtype and train.remat
  fields = {f.name for f in dataclasses.fields(cls)} - {"parent", "name", "dtype", "remat"}
  unknown = sorted(set(args) - fields)
  if unknown:
    raise ConfigError(f"model {unknown} are not arguments of {cls.__name__}; it takes "
                     f"{sorted(fields)}")
  if "backbone" not in fields:  # a model without a shared backbone computes by its fields
    try:
      return cls(**args, dtype=DTYPES[dtype], remat=bool(remat))
    except (ValueError, TypeError) as e:
      raise ConfigError(f"model: {e}") from e
  backbone = dict(args.pop("backbone", None) or {})
  for key in ("dtype", "remat"):
    if key in backbone:
      raise ConfigError(f"model.backbone.{key}: set train.{key} instead (how a model "
                       "computes is part of the training recipe)")
  if "kind" not in backbone:
    raise ConfigError("model.backbone.kind: missing (caduceus, mamba or hyena)")
  try:  # the modules check their own arguments (ValueError, or TypeError for a wrong kind)
    args["backbone"] = backbone_config(backbone.pop("kind"), **backbone,
                                       dtype=DTYPES[dtype], remat=bool(remat))
    if args.get("bottleneck") is not None:
      args["bottleneck"] = BetaMask(**args["bottleneck"])
    return cls(**args)
  except (ValueError, TypeError) as e:
    if isinstance(e, ConfigError):
      raise
    raise ConfigError(f"model: {e}") from e


def _model_class(name: str) -> type[nn.Module]:
  """The module class registered as `name` (a "module:Class" entry imported now)."""
  entry = MODELS[name]
  if isinstance(entry, str):
    module, cls = entry.split(":")
    entry = getattr(importlib.import_module(module), cls)
  return entry


def top_fraction_mask(mask: Float[Array, "B L"], fraction: float) -> Float[Array, "B L"]:
  """1 at the top `fraction` of each row's positions (ties at the cut included), else 0."""
  k = max(1, int(round(mask.shape[1] * fraction)))
  kth = jax.lax.top_k(mask.astype(jnp.float32), k)[0][:, -1:]
  return (mask >= kth).astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class Task:
  """A model, the loss weights and, for fixed-mask runs, how the mask is made.

  frozen: params the fixed mask reads (a trained generator's) that are never trained. The
  jitted steps and the export take them as an argument, so they are never baked into a
  compiled function as constants; `apply` falls back to this field when called eagerly.
  """

  model: nn.Module
  kl_weight: float = 0.0
  continuity_weight: float = 0.0
  fixed_mask: FixedMask | None = None
  frozen: Any = None

  @property
  def center_len(self) -> int:
    return int(self.model.center_len)

  def init(self, rng: jax.Array, batch: Batch) -> Any:
    """Fresh params (a pytree) from the shapes of one example of `batch`."""
    one = jax.tree.map(lambda x: x[:1], batch)
    return jax.jit(lambda r, b, f: self.model.init(
        {"params": r, "mask": r}, **self._inputs(b, f, train=False))["params"])(
            rng, one, self.frozen)

  def _inputs(self, batch: Batch, frozen: Any, train: bool) -> dict[str, Any]:
    inputs = dict(dna=batch.dna, signals=batch.signals, rna_feat=batch.rna_feat,
                  blacklist=batch.blacklist, train=train)
    for name in self.model.extra_inputs:  # the include list, the peaks, for some options
      if getattr(batch, name) is None:
        raise ConfigError(f"the model's options read the batch's {name!r}, which this batch "
                          "does not have")
      inputs[name] = getattr(batch, name)
    if self.fixed_mask is not None:
      inputs["mask"] = jax.lax.stop_gradient(self.fixed_mask(frozen, batch))
    return inputs

  def apply(self, params: Any, batch: Batch, *, train: bool = False,
            rng: jax.Array | None = None, frozen: Any = None) -> ModelOutput:
    """Forward pass; `rng` draws the mask when training a learned-mask model."""
    frozen = self.frozen if frozen is None else frozen
    batch = jax.tree.map(jnp.asarray, batch)  # numpy batches too (serving, eager use)
    rngs = {"mask": rng} if (train and rng is not None) else None
    return self.model.apply({"params": params}, **self._inputs(batch, frozen, train),
                            rngs=rngs)

  def loss(self, params: Any, batch: Batch, rng: jax.Array, frozen: Any = None
           ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Smooth L1 + kl_weight * KL + continuity_weight * continuity (+ the model's own extra
    terms); (total, terms), the terms with the mask ratio outside the promoter when the
    model has a mask, and for a packed model each row's `selected` count and `overflow`
    (the step's PER_ROW terms, gathered per row rather than averaged)."""
    out = self.apply(params, batch, train=True, rng=rng, frozen=frozen)
    target = jnp.asarray(batch.target)
    huber = smooth_l1(out.prediction, target)
    total = huber + self.kl_weight * out.kl + self.continuity_weight * out.continuity
    # A model's own weighted training terms that need the target (Prism's intervention and
    # uniform losses: model/prism.py PrismOutput.extra_loss); {} for every other model.
    extra = out.extra_loss(target) if hasattr(out, "extra_loss") else {}
    total = total + sum(extra.values())
    terms = {"loss": total, "huber": huber, "kl": out.kl, "continuity": out.continuity,
             **extra}
    if out.mask is not None:
      terms["mask_ratio"] = mask_ratio(out.mask, self.center_len)
    if getattr(self.model, "pack_selected", False):  # per-row (B,) counts: train/capacity.py
      terms.update(selected=jnp.sum(out.mask == 1.0, axis=1, dtype=jnp.int32),
                   overflow=out.overflow)
    return total, terms


def _check_mask_source(config: ml_collections.ConfigDict) -> None:
  source, model = config.mask.source, config.model
  if source not in MASK_SOURCES:
    raise ConfigError(f"mask.source {source!r}: expected one of {MASK_SOURCES}")
  learned_model = model.name == "seq2exp" and model.get("bottleneck") is not None
  if source == "learned" and model.name == "seq2exp" and not learned_model:
    raise ConfigError("mask.source='learned' needs model.bottleneck (it is None); for a "
                     "fixed mask set mask.source to 'peaks' or 'generator_top'")
  if source != "learned" and (model.name != "seq2exp" or learned_model):
    raise ConfigError(f"mask.source={source!r} feeds a fixed mask to Seq2Exp's predictor: it "
                     "needs model.name='seq2exp' with model.bottleneck=None")


def build_task(config: ml_collections.ConfigDict,
               load_generator: Callable[[str], tuple[ml_collections.ConfigDict, Any]] | None
               = None) -> Task:
  """The task of `config`. `load_generator(workdir) -> (config, params)` restores the
  trained Seq2Exp whose soft mask a `generator_top` run reads (see checkpoint.py)."""
  _check_mask_source(config)
  train = config.train
  model = build_model(config.model, dtype=train.dtype, remat=train.remat)
  weights = dict(kl_weight=float(config.loss.kl_weight),
                 continuity_weight=float(config.loss.continuity_weight))
  source = config.mask.source
  if source == "learned":
    return Task(model, **weights)
  if source == "peaks":
    return Task(model, **weights,
                fixed_mask=lambda frozen, batch: batch.peaks.astype(jnp.float32))
  if not config.mask.generator_workdir:
    raise ConfigError("mask.source='generator_top' needs mask.generator_workdir, the workdir "
                     "of a trained Seq2Exp run")
  if load_generator is None:
    raise ConfigError("mask.source='generator_top' needs a generator loader")
  gen_config, gen_params = load_generator(config.mask.generator_workdir)
  if gen_config.model.name != "seq2exp" or gen_config.mask.source != "learned":
    raise ConfigError(f"{config.mask.generator_workdir}: not a learned-mask Seq2Exp run "
                     f"(model.name={gen_config.model.name!r}, mask.source="
                     f"{gen_config.mask.source!r})")
  generator = Task(build_model(gen_config.model, dtype=train.dtype, remat=train.remat))
  fraction = float(config.mask.top_fraction)

  def mask_fn(frozen, batch):
    return top_fraction_mask(generator.apply(frozen, batch).mask, fraction)

  return Task(model, **weights, fixed_mask=mask_fn, frozen=gen_params)
