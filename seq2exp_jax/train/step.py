"""The jitted train and eval steps, and the train state they carry.

The state is a plain dict pytree (what Orbax saves):
  step int32 (); params; opt_state; rng uint32 (2,) (the run's base key: step s uses
  fold_in(rng, s)); nonfinite_step int32 () (the first step whose loss terms or gradient
  norm were NaN/Inf, -1 if none) and nonfinite_terms int32 () (a bit per CHECKED entry, at
  that step). Recording the first bad step inside the step means no step has to wait for
  the host; the trainer checks it at every log step and stops the run naming the step and
  the term.

Data parallel: the batch is sharded on the mesh's `data` axis; the state is replicated, or
with `shard_params` each parameter (and its Adam moments) is split along its largest axis
divisible by the axis size (ZeRO-3 style; XLA inserts the gathers). A fixed-mask run's
frozen params are an argument of every step (replicated), never a compiled-in constant.

Gradient accumulation (`grad_accum_steps` K > 1, train.grad_accum_steps): the step still
takes the whole optimizer batch B and makes one optimizer update, but computes it as K
micro-batches of B / K rows one after another (`jax.lax.scan`), so only one micro-batch's
activations are alive at once; the gradients and loss terms are summed and divided by K.
Every loss term is a mean over the rows of its batch (train batches have no padding rows),
so with equal micro-batches this is the full batch's mean and gradient. Micro-batch j is
the rows {i : i % K == j} (`micro_batches`): with (B / devices) % K == 0 each device's
contiguous shard of B rows splits locally into its shard of every micro-batch, so the
micro-batches stay sharded on `data` and nothing moves between devices. Micro-batch j draws
its mask with fold_in(step key, j): a model with a sampled mask therefore draws differently
than one batch of B would (deterministic models give the same result); K = 1 is the plain
step, unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from data_pipeline.batch import Batch
from data_pipeline.errors import ConfigError
from seq2exp_jax.train.task import LOSS_TERMS, Task

CHECKED = LOSS_TERMS + ("grad_norm",)
# Per-row terms of a packed model's step (B,) int32: each row's selected count and the
# selected positions its capacity dropped (train/capacity.py).
PER_ROW = ("selected", "overflow")


def init_state(task: Task, tx: optax.GradientTransformation, batch: Batch, seed: int
               ) -> dict[str, Any]:
  """The state at step 0: params from `seed`, the optimizer's state, the run's base key."""
  init_rng, rng = jax.random.split(jax.random.PRNGKey(seed))
  params = task.init(init_rng, batch)
  return {"step": jnp.zeros((), jnp.int32), "params": params, "opt_state": tx.init(params),
          "rng": rng, "nonfinite_step": jnp.full((), -1, jnp.int32),
          "nonfinite_terms": jnp.zeros((), jnp.int32)}


def nonfinite_names(bits: int) -> list[str]:
  return [name for i, name in enumerate(CHECKED) if bits >> i & 1]


def _param_spec(shape: tuple[int, ...], size: int) -> P:
  """Split the largest axis divisible by `size`, else replicate."""
  axes = [i for i in np.argsort(shape)[::-1] if shape[i] % size == 0 and shape[i] >= size]
  if size == 1 or not axes:
    return P()
  spec = [None] * len(shape)
  spec[int(axes[0])] = "data"
  return P(*spec)


def state_sharding(state: dict[str, Any], mesh: Mesh, shard_params: bool) -> Any:
  """NamedShardings for every leaf of `state` (or of its jax.eval_shape)."""
  size = mesh.shape["data"]

  def leaf(x):
    if shard_params and np.ndim(x) >= 1:
      return NamedSharding(mesh, _param_spec(tuple(x.shape), size))
    return NamedSharding(mesh, P())
  return jax.tree_util.tree_map(leaf, state)


@dataclasses.dataclass(frozen=True)
class BoundStep:
  """A jitted step whose last argument, the task's frozen params, is bound: callers pass
  the rest; the frozen params still enter as an argument, never as a constant."""

  jitted: Any
  frozen: Any

  def __call__(self, *args: Any) -> Any:
    return self.jitted(*args, self.frozen)

  def lower(self, *args: Any) -> Any:
    """The jitted function lowered for these arguments (e.g. for its memory analysis)."""
    return self.jitted.lower(*args, self.frozen)


def micro_batches(batch: Batch, k: int) -> Batch:
  """(B, ...) -> (K, B / K, ...) for every field: micro-batch j (index j of the new leading
  axis) is the rows {i : i % K == j}. A local reshape of each device's contiguous shard when
  (B / devices) % K == 0, so micro-batch j stays sharded on `data` (spec (None, "data"))."""
  return jax.tree.map(
      lambda x: jnp.swapaxes(x.reshape(x.shape[0] // k, k, *x.shape[1:]), 0, 1), batch)


def at_capacity(task: Task, capacity: int | None) -> Task:
  """`task` with its packed predictor at a static `capacity` (None: unchanged)."""
  if capacity is None:
    return task
  return dataclasses.replace(task, model=task.model.clone(capacity=int(capacity)))


def _gradients(task: Task, k: int, mesh: Mesh) -> Callable[..., tuple[dict, Any]]:
  """(params, batch, step key, frozen) -> (loss terms, gradient) of the whole batch, the
  mean over K micro-batches computed one after another when k > 1 (PER_ROW terms are
  gathered back to the batch's rows, not averaged)."""
  grad_fn = jax.value_and_grad(task.loss, has_aux=True)

  def one(params, batch, rng, frozen):
    (_, terms), grads = grad_fn(params, batch, rng, frozen)
    return terms, grads

  if k == 1:
    return one
  stacked, micro = NamedSharding(mesh, P(None, "data")), NamedSharding(mesh, P("data"))

  def accumulate(params, batch, rng, frozen):
    size = mesh.shape["data"]
    if batch.dna.shape[0] % (k * size):
      raise ConfigError(f"train.batch_size = {batch.dna.shape[0]}: not divisible by "
                        f"train.grad_accum_steps ({k}) x {size} devices")
    parts = jax.lax.with_sharding_constraint(micro_batches(batch, k), stacked)

    def body(total, xs):
      j, part = xs
      part = jax.lax.with_sharding_constraint(part, micro)
      terms, grads = one(params, part, jax.random.fold_in(rng, j), frozen)
      rows = {name: terms.pop(name) for name in PER_ROW if name in terms}
      return jax.tree.map(jnp.add, total, (terms, grads)), rows

    first = jax.tree.map(lambda x: x[0], parts)
    terms, grads = jax.eval_shape(one, params, first, rng, frozen)
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype),
                         ({n: v for n, v in terms.items() if n not in PER_ROW}, grads))
    total, rows = jax.lax.scan(body, zeros, (jnp.arange(k), parts))
    terms, grads = jax.tree.map(lambda x: x / k, total)
    # rows[name][j, r] is batch row r * K + j (`micro_batches`)
    terms.update({n: jnp.swapaxes(v, 0, 1).reshape(-1) for n, v in rows.items()})
    return terms, grads

  return accumulate


def make_train_step(task: Task, tx: optax.GradientTransformation,
                    schedule: optax.Schedule, state_shardings: Any, mesh: Mesh,
                    grad_accum_steps: int = 1, capacity: int | None = None
                    ) -> Callable[[dict, Batch], tuple[dict, dict]]:
  """(state, batch) -> (new state, measurements of this step), jitted and donating the old
  state; one optimizer update per batch, over `grad_accum_steps` micro-batches (see the
  module docstring); a packed model's predictor at `capacity` (None: its own)."""
  task = at_capacity(task, capacity)
  gradients = _gradients(task, int(grad_accum_steps), mesh)

  def step_fn(state, batch, frozen):
    step = state["step"]
    rng = jax.random.fold_in(state["rng"], step)
    terms, grads = gradients(state["params"], batch, rng, frozen)
    terms["grad_norm"] = optax.global_norm(grads)
    updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    terms["learning_rate"] = jnp.asarray(schedule(step), jnp.float32)
    bad = jnp.stack([~jnp.isfinite(terms[k]) for k in CHECKED])
    first = (state["nonfinite_step"] < 0) & jnp.any(bad)
    bits = jnp.sum(bad.astype(jnp.int32) << jnp.arange(len(CHECKED), dtype=jnp.int32))
    new_state = {
        "step": step + 1, "params": params, "opt_state": opt_state, "rng": state["rng"],
        "nonfinite_step": jnp.where(first, step, state["nonfinite_step"]),
        "nonfinite_terms": jnp.where(first, bits, state["nonfinite_terms"])}
    return new_state, terms

  replicated = NamedSharding(mesh, P())
  jitted = jax.jit(step_fn, in_shardings=(state_shardings, NamedSharding(mesh, P("data")),
                                          replicated),
                   out_shardings=(state_shardings, replicated), donate_argnums=(0,))
  return BoundStep(jitted, task.frozen)


def make_eval_step(task: Task) -> Callable[[Any, Batch], dict]:
  """(params, batch) -> {"prediction": (B,), "mask": (B, L) for models with a mask}."""

  def eval_fn(params, batch, frozen):
    out = task.apply(params, batch, train=False, frozen=frozen)
    result = {"prediction": out.prediction}
    if out.mask is not None:
      result["mask"] = out.mask
    return result

  return BoundStep(jax.jit(eval_fn), task.frozen)
