"""What a config trains: the model, where the predictor's mask comes from, and the loss.

`Task.apply` is the one forward function used by training, evaluation, prediction and
export, so the four cannot drift apart. Batches are the loader's dicts (see
`data_pipeline.loader.ShardedLoader`); only their numeric fields enter jitted code.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import ml_collections

from seq2exp_jax.model.baselines import GeneExpModel
from seq2exp_jax.model.heads import smooth_l1
from seq2exp_jax.model.seq2exp import Seq2Exp

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
# Per-base batch fields (B, L, ...): cropped together to the config's window.
PER_BASE = ("dna", "signals", "blacklist", "includelist", "peaks", "truth")
MASK_SOURCES = ("learned", "peaks", "generator_top")
LOSS_TERMS = ("loss", "huber", "kl", "continuity")


@flax.struct.dataclass
class Outputs:
  """prediction (B,) float32; mask (B, L) float32 or None (no mask: plain backbones);
  kl, continuity: float32 scalars (0 without a learned mask)."""
  prediction: jax.Array
  mask: jax.Array | None
  kl: jax.Array
  continuity: jax.Array


def build_model(config: ml_collections.ConfigDict) -> nn.Module:
  """The flax module of `config.model`, with the training dtype and remat."""
  args = dict(config.model.args)
  if config.train.dtype not in DTYPES:
    raise ValueError(f"train.dtype {config.train.dtype!r}: expected one of {sorted(DTYPES)}")
  args.update(dtype=DTYPES[config.train.dtype], remat=bool(config.train.remat))
  if config.mask.source not in MASK_SOURCES:
    raise ValueError(f"mask.source {config.mask.source!r}: expected one of {MASK_SOURCES}")
  if config.model.name == "seq2exp":
    if config.mask.source != "learned":
      args["mask_source"] = "input"
    cls = Seq2Exp
  elif config.model.name == "baseline":
    if config.mask.source != "learned":
      raise ValueError("mask.source applies to model.name='seq2exp' only")
    cls = GeneExpModel
  else:
    raise ValueError(f"model.name {config.model.name!r}: expected 'seq2exp' or 'baseline'")
  fields = {f.name for f in dataclasses.fields(cls)} - {"parent", "name"}
  unknown = sorted(set(args) - fields)
  if unknown:
    raise ValueError(f"model.args {unknown} are not arguments of {cls.__name__}; it takes "
                     f"{sorted(fields)}")
  return cls(**args)


def crop(batch: dict[str, Any], window: int | None) -> dict[str, Any]:
  """The central `window` bases of every per-base field (TSS stays at index window/2)."""
  per_base = [k for k in PER_BASE if k in batch]
  if window is None or not per_base:
    return batch
  length = batch[per_base[0]].shape[1]
  if window > length or window % 2:
    raise ValueError(f"data.window {window}: expected an even length <= the stored window "
                     f"{length}")
  start = length // 2 - window // 2
  return {k: (v[:, start:start + window] if k in PER_BASE else v) for k, v in batch.items()}


def top_fraction_mask(mask, fraction: float):
  """1 at the top `fraction` of each row's positions, else 0. mask: (B, L) -> (B, L)."""
  k = max(1, int(round(mask.shape[1] * fraction)))
  kth = jax.lax.top_k(mask.astype(jnp.float32), k)[0][:, -1:]
  return (mask >= kth).astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class Task:
  """A model plus its mask source. `fixed_mask(batch) -> (B, L)` for fixed-mask runs."""

  config: ml_collections.ConfigDict
  model: nn.Module
  fixed_mask: Callable[[dict[str, Any]], jax.Array] | None = None

  @property
  def has_mask(self) -> bool:
    return isinstance(self.model, Seq2Exp)

  def init(self, rng: jax.Array, batch: dict[str, Any]) -> Any:
    """Fresh params (a pytree) from the shapes of one example of `batch`."""
    one = {k: v[:1] for k, v in numeric(batch).items()}
    return jax.jit(lambda r: self.model.init(
        {"params": r, "mask": r}, **self._inputs(one, train=False))["params"])(rng)

  def _inputs(self, batch: dict[str, Any], train: bool) -> dict[str, Any]:
    if isinstance(self.model, GeneExpModel):
      return dict(dna=batch["dna"], signals=batch["signals"], rna_feat=batch["rna_feat"])
    inputs = dict(dna=batch["dna"], signals=batch["signals"], blacklist=batch["blacklist"],
                  rna_feat=batch["rna_feat"], train=train)
    if self.fixed_mask is not None:
      inputs["mask"] = jax.lax.stop_gradient(self.fixed_mask(batch))
    return inputs

  def apply(self, params: Any, batch: dict[str, Any], *, train: bool = False,
            rng: jax.Array | None = None) -> Outputs:
    """Forward pass on a (cropped) numeric batch; `rng` is needed when training Seq2Exp."""
    rngs = {"mask": rng} if (train and rng is not None) else None
    out = self.model.apply({"params": params}, **self._inputs(batch, train), rngs=rngs)
    if not self.has_mask:
      zero = jnp.zeros((), jnp.float32)
      return Outputs(prediction=out[:, 0].astype(jnp.float32), mask=None, kl=zero,
                     continuity=zero)
    return Outputs(prediction=out.prediction[:, 0].astype(jnp.float32), mask=out.mask,
                   kl=out.kl, continuity=out.continuity)

  def loss(self, params: Any, batch: dict[str, Any], rng: jax.Array
           ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Smooth L1 + kl_weight * KL + continuity_weight * continuity; (total, terms)."""
    out = self.apply(params, batch, train=True, rng=rng)
    huber = smooth_l1(out.prediction, batch["target"])
    total = (huber + self.config.loss.kl_weight * out.kl
             + self.config.loss.continuity_weight * out.continuity)
    terms = {"loss": total, "huber": huber, "kl": out.kl, "continuity": out.continuity}
    if out.mask is not None:
      terms["mask_ratio"] = jnp.mean(out.mask)
    return total, terms


def numeric(batch: dict[str, Any]) -> dict[str, Any]:
  """The fields of a loader batch that can enter jitted code (not ensid/chrom/tss)."""
  return {k: v for k, v in batch.items() if k not in ("ensid", "chrom", "tss")}


def build_task(config: ml_collections.ConfigDict,
               load_generator: Callable[[str], tuple[ml_collections.ConfigDict, Any]] | None
               = None) -> Task:
  """The task of `config`. `load_generator(workdir) -> (config, params)` restores the
  trained Seq2Exp whose soft mask a `generator_top` run reads (see checkpoint.py)."""
  model = build_model(config)
  source = config.mask.source
  if source == "learned":
    return Task(config, model)
  if source == "peaks":
    return Task(config, model, lambda batch: batch["peaks"].astype(jnp.float32))
  if not config.mask.generator_workdir:
    raise ValueError("mask.source='generator_top' needs mask.generator_workdir, the workdir "
                     "of a trained Seq2Exp run")
  if load_generator is None:
    raise ValueError("mask.source='generator_top' needs a generator loader")
  gen_config, gen_params = load_generator(config.mask.generator_workdir)
  if gen_config.model.name != "seq2exp" or gen_config.mask.source != "learned":
    raise ValueError(f"{config.mask.generator_workdir}: not a learned-mask Seq2Exp run "
                     f"(model.name={gen_config.model.name!r}, mask.source="
                     f"{gen_config.mask.source!r})")
  gen_config = gen_config.copy_and_resolve_references()
  gen_config.train.dtype, gen_config.train.remat = config.train.dtype, config.train.remat
  generator = Task(gen_config, build_model(gen_config))
  fraction = float(config.mask.top_fraction)

  def mask_fn(batch):
    return top_fraction_mask(generator.apply(gen_params, batch, train=False).mask, fraction)

  return Task(config, model, mask_fn)
