"""`train_and_evaluate(config, workdir)`: the training loop (big_vision / flax-examples shape).

One jitted, donated step over a mesh of every device (every host's after
`jax.distributed.initialize()`); measurements stay on device until a log step; periodic
validation keeps the best parameters on validation MSE; Orbax checkpoints (state + loader
position) every `checkpoint_every` steps and at the end; a workdir with checkpoints
resumes from the latest one, reaching the same parameters as an uninterrupted run.
"""

from __future__ import annotations

import json
import logging
import math
import os
import pathlib
from typing import Any

import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh

from data_pipeline.errors import ConfigError, RunFailedError
from data_pipeline import io
from data_pipeline.loader import ShardedLoader, default_mesh
from seq2exp_jax.config import loader as config_loader
from seq2exp_jax.config.checks import check_config
from seq2exp_jax.config.signature import differences, model_signature
from seq2exp_jax.evaluation.evaluate import eval_loader, evaluate
from seq2exp_jax.train import checkpoint, init_params
from seq2exp_jax.train.capacity import overflow_rate, policy_of
from seq2exp_jax.train.metric_writer import MetricWriter, progress_bar
from seq2exp_jax.train.optim import learning_rate, make_optimizer
from seq2exp_jax.train.step import (init_state, make_eval_step, make_train_step,
                                    nonfinite_names, state_sharding)
from seq2exp_jax.train.task import build_task
from seq2exp_jax.train.throughput import Throughput

log = logging.getLogger(__name__)


class NonFiniteError(RunFailedError, FloatingPointError):
  """A loss term or the gradient norm became NaN or Inf."""


def prepare_workdir(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> None:
  """Writes config.json; refuses a workdir that holds a run of a different model."""
  workdir.mkdir(parents=True, exist_ok=True)
  path = workdir / "config.json"
  if path.is_file():
    old = config_loader.from_json(path.read_text())
    diff = differences(model_signature(old), model_signature(config))
    if diff:
      raise checkpoint.CheckpointMismatch(
          f"{workdir} holds a run of a different model ({'; '.join(diff)}); use another "
          "--workdir")
  if jax.process_index() == 0:
    io.write_json(path, json.loads(config_loader.to_json(config)))


def load_generator(workdir: str) -> tuple[ml_collections.ConfigDict, Any]:
  """(config, params) of a trained Seq2Exp's best checkpoint (for generator_top runs)."""
  config, params, _ = checkpoint.load_run(workdir, "best")
  return config, params


def improves(mse: float, best: dict[str, Any] | None) -> bool:
  """A finite validation MSE below the best so far: NaN or Inf never becomes the best."""
  return math.isfinite(mse) and (best is None or mse < best["mse"])


def _check_finite(state: dict[str, Any]) -> None:
  bad_step = int(jax.device_get(state["nonfinite_step"]))
  if bad_step >= 0:
    names = nonfinite_names(int(jax.device_get(state["nonfinite_terms"])))
    raise NonFiniteError(f"step {bad_step}: non-finite {', '.join(names)}; stopping "
                         "(the last checkpoint before it is kept)")


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | os.PathLike,
                       mesh: Mesh | None = None, *, restart: bool = False,
                       init: init_params.LoadedParams | None = None) -> dict[str, Any]:
  """Trains `config` in `workdir` (resuming from its newest checkpoint that restores);
  returns the final measurements, the last validation metrics and the best validation
  step. `restart`: train from step 0 when the workdir's checkpoints all fail to restore
  (refused otherwise; see `checkpoint.restore_newest`). `init`: params a run starting at
  step 0 starts from (a restored checkpoint wins), recorded in workdir/init.json."""
  workdir = pathlib.Path(workdir)
  mesh = mesh or default_mesh()
  check_config(config, data_devices=mesh.shape["data"])
  if not config.data.dir:
    raise ConfigError("data.dir is empty: pass --config.data.dir=<prepared data set>")
  tc, dc = config.train, config.data
  signature = model_signature(config)
  task = build_task(config, load_generator)
  schedule = learning_rate(config.optim, tc.steps)
  tx = make_optimizer(config.optim, schedule)
  train_loader = ShardedLoader(dc.dir, dc.train_split, tc.batch_size, mesh=mesh,
                               seed=tc.seed, shuffle=True, num_threads=dc.num_threads,
                               prefetch=dc.prefetch, window=dc.window)
  if init is not None:  # params that do not fit are refused before the workdir is claimed
    init_params.check_fits(init, task, train_loader.window or train_loader.stored_window)
  # Only a config that builds and a data set that opens may claim the workdir.
  prepare_workdir(config, workdir)
  first = train_loader.to_global(next(train_loader.host_batches(0)))
  shapes = jax.eval_shape(lambda: init_state(task, tx, first, tc.seed))
  shardings = state_sharding(shapes, mesh, tc.shard_params)
  state = jax.jit(lambda: init_state(task, tx, first, tc.seed), out_shardings=shardings)()

  mngr = checkpoint.manager(workdir / "checkpoints", keep=tc.keep_checkpoints)
  best_mngr = checkpoint.manager(workdir / "best", keep=1)
  resumed = checkpoint.restore_newest(mngr, checkpoint.abstract(state), signature,
                                     restart=restart)
  if resumed is not None:
    state, loader_state, latest = resumed
    train_loader.set_state(loader_state)
    log.info("resumed %s at step %d", workdir, latest)
  elif init is not None:
    state = init_params.start_from(init, state, tx, shardings)
    init_params.record(workdir, init)
  best_file = workdir / "best.json"
  best = json.loads(best_file.read_text()) if best_file.is_file() else None

  # A packed model's capacity per step (train/capacity.py): one jitted step per capacity.
  policy = policy_of(config, first.dna.shape[1])
  train_steps: dict[int | None, Any] = {}

  def train_step(state, batch):
    capacity = policy.capacity
    if capacity not in train_steps:
      train_steps[capacity] = make_train_step(task, tx, schedule, shardings, mesh,
                                              tc.grad_accum_steps, capacity)
    state, terms = train_steps[capacity](state, batch)
    policy.record(terms.get("selected"))
    return state, terms

  valid_loader = eval_loader(dc.dir, dc.eval_split, tc.eval_batch_size, window=dc.window,
                             mesh=mesh, num_threads=dc.num_threads, prefetch=dc.prefetch)
  eval_step = make_eval_step(task)
  writer = MetricWriter(workdir, enabled=jax.process_index() == 0)
  step = int(jax.device_get(state["step"]))
  writer.truncate_after(step)
  result: dict[str, Any] = {"step": step}
  pending: list[dict[str, jax.Array]] = []
  throughput = Throughput(step, tc.batch_size)  # the optimizer batch (all its micro-batches)
  bar = progress_bar(total=tc.steps, initial=step, enabled=tc.progress, desc=config.experiment)
  try:
    for batch in (train_loader if step < tc.steps else ()):
      state, terms = train_step(state, batch)
      step += 1
      pending.append(terms)
      bar.update(1)
      if step % tc.sync_every == 0:
        # Bound the queue of dispatched steps (XLA:CPU collectives can stall otherwise).
        jax.block_until_ready(terms["loss"])
        policy.update()  # the counts are computed now: fetching them does not wait
      last = step == tc.steps
      log_now, eval_now = last or step % tc.log_every == 0, last or step % tc.eval_every == 0
      save_now = last or step % tc.checkpoint_every == 0
      if log_now or eval_now or save_now:
        _check_finite(state)  # nothing non-finite is logged as fine, validated or saved
      if log_now:
        fetched = jax.device_get(pending)
        means = {k: float(np.mean([f[k] for f in fetched])) for k in fetched[0]}
        means["learning_rate"] = float(fetched[-1]["learning_rate"])
        means["examples_per_second"] = throughput.rate(step)
        means.update(overflow_rate(fetched), **policy.interval())
        writer.write(step, "train", means)
        bar.set_postfix(loss=f"{means['loss']:.4f}")
        result["train"] = means
        pending = []
      if eval_now:
        with throughput.excluded():  # validation is not training throughput
          metrics = evaluate(eval_step, state["params"], valid_loader, task.center_len)
          writer.write(step, dc.eval_split, metrics)
          result["valid"] = metrics
          if improves(metrics["mse"], best):
            best = dict(metrics, step=step)
            if step in best_mngr.all_steps():  # from a trajectory abandoned before resuming
              best_mngr.delete(step)  # (other steps or schedule); keep=1 would drop it too
            checkpoint.save(best_mngr, step, state, train_loader.get_state(), signature)
            best_mngr.wait_until_finished()
            if jax.process_index() == 0:
              io.write_json(best_file, best)
      if save_now:
        checkpoint.save(mngr, step, state, train_loader.get_state(), signature)
      if last:
        break
  finally:
    bar.close()
    mngr.wait_until_finished()
    writer.close()
  result.update(step=step, best=best)
  return result
