"""Gradient accumulation (train.grad_accum_steps): K micro-batches give one batch of K x the
size's loss terms and update, stay sharded on `data` without moving rows between devices,
draw the mask per micro-batch, and K = 1 is the plain step bit for bit; the config check."""

from __future__ import annotations

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from conftest import REPO
from data_pipeline.batch import Batch
from data_pipeline.errors import ConfigError
from data_pipeline.loader import default_mesh
from seq2exp_jax.config import loader as configs
from seq2exp_jax.config.checks import check_config
from seq2exp_jax.train.optim import learning_rate, make_optimizer
from seq2exp_jax.train.step import init_state, make_train_step, micro_batches, state_sharding
from seq2exp_jax.train.task import build_task
from seq2exp_jax.train.trainer import train_and_evaluate

LENGTH = 256
COLLECTIVES = ("all-to-all", "all-gather", "collective-permute")


def _config(name: str):
  c = configs.load_config(str(REPO / "experiments" / f"{name}.py:smoke"))
  c.data.window = LENGTH
  return c


def _batch(size: int, mesh, seed: int = 0) -> Batch:
  rng = np.random.default_rng(seed)
  host = Batch(dna=np.eye(4, dtype=np.float32)[rng.integers(0, 4, (size, LENGTH))],
               signals=rng.gamma(0.5, 2.0, (size, LENGTH, 3)).astype(np.float32),
               rna_feat=rng.normal(size=(size, 9)).astype(np.float32),
               blacklist=rng.random((size, LENGTH)) < 0.05,
               target=rng.normal(size=(size,)).astype(np.float32))
  return jax.device_put(host, NamedSharding(mesh, P("data")))


def _setup(name: str, batch: Batch, mesh, tx=None):
  """(task, tx, schedule, shardings, fresh_state) for `name`'s smoke config; tx defaults
  to the config's AdamW. fresh_state() is a new copy each call (the steps donate it)."""
  config = _config(name)
  task = build_task(config)
  schedule = learning_rate(config.optim, config.train.steps)
  tx = tx or make_optimizer(config.optim, schedule)
  shapes = jax.eval_shape(lambda: init_state(task, tx, batch, 0))
  shardings = state_sharding(shapes, mesh, False)
  init = jax.jit(lambda: init_state(task, tx, batch, 0), out_shardings=shardings)
  return task, tx, schedule, shardings, init


@pytest.fixture(scope="module")
def caduceus():
  """Caduceus with signals (deterministic) on a batch of 32 with plain SGD of rate 1, so the
  updated params are params - gradient; run(k) -> (compiled step, state, terms), cached."""
  mesh = default_mesh()
  batch = _batch(32, mesh)
  task, tx, schedule, shardings, fresh = _setup("caduceus_signals", batch, mesh,
                                                tx=optax.sgd(1.0))
  runs = {}

  def run(k: int):
    if k not in runs:
      step = make_train_step(task, tx, schedule, shardings, mesh, grad_accum_steps=k)
      compiled = step.lower(fresh(), batch).compile()
      runs[k] = (compiled, *compiled(fresh(), batch, task.frozen))
    return runs[k]
  return SimpleNamespace(mesh=mesh, batch=batch, task=task, tx=tx, shardings=shardings,
                         fresh=fresh, run=run)


@pytest.mark.parametrize("k", [2, 4])
def test_k_micro_batches_equal_one_batch_of_k_times_the_size(caduceus, k):
  """The batch of 32 as K micro-batches of 32 / K (4 or 2 rows per device) against one step
  of all 32: the same loss terms and gradient (compared entry by entry in the params)."""
  _, full_state, full = caduceus.run(1)
  compiled, acc_state, acc = caduceus.run(k)
  for name in ("loss", "huber", "kl", "continuity", "grad_norm", "learning_rate"):
    np.testing.assert_allclose(acc[name], full[name], rtol=1e-5, atol=1e-5, err_msg=name)
  assert float(full["grad_norm"]) > 0
  moved = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))),
                       full_state["params"], caduceus.fresh()["params"])
  assert max(jax.tree.leaves(moved)) > 1e-3  # the comparison below sees real gradients
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5),
               acc_state["params"], full_state["params"])
  assert int(acc_state["step"]) == 1 and int(acc_state["nonfinite_step"]) == -1
  # The compiled step keeps the gradient's all-reduce and moves no batch rows.
  hlo = compiled.as_text()
  assert "all-reduce" in hlo and not [c for c in COLLECTIVES if c in hlo]


def test_k_equals_1_is_the_plain_step_bit_for_bit(caduceus):
  """K = 1 against the step as it was written before accumulation."""
  task, tx, mesh = caduceus.task, caduceus.tx, caduceus.mesh

  def plain(state, batch, frozen):
    rng = jax.random.fold_in(state["rng"], state["step"])
    (_, terms), grads = jax.value_and_grad(task.loss, has_aux=True)(
        state["params"], batch, rng, frozen)
    updates, _ = tx.update(grads, state["opt_state"], state["params"])
    return optax.apply_updates(state["params"], updates), terms

  want_params, want = jax.jit(plain, in_shardings=(
      caduceus.shardings, NamedSharding(mesh, P("data")), NamedSharding(mesh, P())))(
          caduceus.fresh(), caduceus.batch, None)
  _, state, got = caduceus.run(1)
  for name in want:
    np.testing.assert_array_equal(got[name], want[name], err_msg=name)
  jax.tree.map(np.testing.assert_array_equal, state["params"], want_params)


class _NoisyTask:
  """A loss that draws from its key (as a sampled mask does), cheap to compile."""

  frozen = None

  def loss(self, params, batch, rng, frozen=None):
    noise = jax.random.normal(rng, batch.target.shape)
    loss = jnp.mean((params["w"] * batch.rna_feat[:, 0] + noise - batch.target) ** 2)
    return loss, {"loss": loss, "huber": loss, "kl": jnp.mean(noise),
                  "continuity": jnp.zeros(())}


def test_each_micro_batch_draws_with_its_own_key():
  """K = 2: the terms and gradient are the mean over micro-batch j = rows i % 2 == j, each
  drawn with fold_in(step key, j)."""
  mesh, task, tx = default_mesh(), _NoisyTask(), optax.sgd(1.0)
  batch = _batch(16, mesh, seed=1)
  params = {"w": jnp.ones(())}
  state = {"step": jnp.zeros((), jnp.int32), "params": params, "opt_state": tx.init(params),
           "rng": jax.random.PRNGKey(3), "nonfinite_step": jnp.full((), -1, jnp.int32),
           "nonfinite_terms": jnp.zeros((), jnp.int32)}
  key, host = jax.random.fold_in(state["rng"], 0), jax.tree.map(np.asarray, batch)
  parts = [jax.value_and_grad(task.loss, has_aux=True)(
      params, jax.tree.map(lambda x, j=j: x[j::2], host), jax.random.fold_in(key, j))
           for j in range(2)]
  shardings = state_sharding(state, mesh, False)
  new, got = make_train_step(task, tx, optax.constant_schedule(1.0), shardings, mesh,
                             grad_accum_steps=2)(state, batch)
  for name in ("loss", "kl"):
    np.testing.assert_allclose(got[name], (parts[0][0][1][name] + parts[1][0][1][name]) / 2,
                               rtol=1e-6, err_msg=name)
  grad = (parts[0][1]["w"] + parts[1][1]["w"]) / 2
  np.testing.assert_allclose(new["params"]["w"], 1.0 - grad, rtol=1e-6)


def test_micro_batches_stay_on_their_devices():
  """Micro-batch j is the rows i % K == j, sharded on `data`, made without moving a row."""
  mesh = default_mesh()
  k, rows = 4, 8 * 4
  x = jax.device_put(np.arange(rows * 3).reshape(rows, 3), NamedSharding(mesh, P("data")))
  split = jax.jit(lambda b: micro_batches(b, k),
                  out_shardings=NamedSharding(mesh, P(None, "data")))
  parts = split(x)
  for j in range(k):
    np.testing.assert_array_equal(parts[j], np.asarray(x)[j::k])
  hlo = split.lower(x).compile().as_text()
  assert not [c for c in COLLECTIVES if c in hlo], "micro-batches moved rows between devices"
  rows_on = {s.device: set(np.asarray(s.data)[:, 0] // 3) for s in x.addressable_shards}
  for shard in parts.addressable_shards:  # each device holds rows of its own input shard
    assert set(np.asarray(shard.data)[..., 0].ravel() // 3) <= rows_on[shard.device]

def test_config_check_refuses_a_batch_that_does_not_split(tmp_path):
  c = _config("caduceus_signals")
  c.train.update(batch_size=8, grad_accum_steps=2)
  with pytest.raises(ConfigError, match=r"train\.batch_size = 8, train\.grad_accum_steps = 2: "
                     r"expected the batch to be a multiple of grad_accum_steps x the 8 "
                     r"devices of the mesh = 16"):
    check_config(c, data_devices=8)
  assert check_config(c, data_devices=4) is c  # 2 rows per device split in 2
  assert check_config(c) is c  # no mesh given: not checked
  c.train.grad_accum_steps = 0
  with pytest.raises(ConfigError, match=r"train\.grad_accum_steps = 0: expected an integer "
                     ">= 1"):
    check_config(c, data_devices=8)
  c.train.grad_accum_steps = 3  # refused before the data set is opened or the workdir made
  c.data.dir = str(tmp_path / "no_data")
  with pytest.raises(ConfigError, match=r"train\.grad_accum_steps = 3"):
    train_and_evaluate(c, tmp_path / "w")
  assert not (tmp_path / "w").exists()
