"""What a config trains: the loss terms, the mask ratio, fixed masks, frozen params as
arguments."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from conftest import REPO
from data_pipeline.batch import Batch
from seq2exp_jax.config import loader as configs
from seq2exp_jax.evaluation.streaming import MaskMetrics
from seq2exp_jax.model.promoter import promoter_positions
from seq2exp_jax.train.step import make_eval_step
from seq2exp_jax.train.task import build_task, top_fraction_mask

LENGTH = 256


def _config(name: str) -> ml_collections.ConfigDict:
  c = configs.load_config(str(REPO / "experiments" / f"{name}.py:smoke"))
  c.data.window = LENGTH
  return c


def _batch(seed=0, batch=2) -> Batch:
  rng = np.random.default_rng(seed)
  return Batch(dna=np.eye(4, dtype=np.float32)[rng.integers(0, 4, (batch, LENGTH))],
               signals=rng.gamma(0.5, 2.0, (batch, LENGTH, 3)).astype(np.float32),
               rna_feat=rng.normal(size=(batch, 9)).astype(np.float32),
               blacklist=rng.random((batch, LENGTH)) < 0.05,
               peaks=rng.random((batch, LENGTH)) < 0.2,
               target=rng.normal(size=(batch,)).astype(np.float32))


def test_top_fraction_mask_keeps_the_top_positions():
  mask = jnp.asarray([[0.1, 0.9, 0.5, 0.7, 0.2, 0.3, 0.8, 0.0, 0.4, 0.6]])
  np.testing.assert_array_equal(top_fraction_mask(mask, 0.3),
                                [[0, 1, 0, 1, 0, 0, 1, 0, 0, 0]])
  assert int(top_fraction_mask(mask, 0.001).sum()) == 1  # at least one position
  ties = jnp.asarray([[0.5, 0.5, 0.5, 0.1]])
  np.testing.assert_array_equal(top_fraction_mask(ties, 0.25), [[1, 1, 1, 0]])  # ties kept


@pytest.fixture(scope="module")
def soft():
  """A Seq2Exp-soft smoke task, its initial params and a batch (built once)."""
  task = build_task(_config("seq2exp_soft"))
  batch = _batch()
  return task, task.init(jax.random.PRNGKey(0), batch), batch


def test_loss_is_huber_plus_weighted_kl_and_continuity(soft):
  _, params, batch = soft
  c = _config("seq2exp_soft")
  c.loss.update(kl_weight=0.3, continuity_weight=2.0)
  task = build_task(c)
  total, terms = task.loss(params, batch, jax.random.PRNGKey(1))
  assert float(total) == pytest.approx(float(terms["huber"] + 0.3 * terms["kl"]
                                             + 2.0 * terms["continuity"]), rel=1e-6)
  assert float(terms["kl"]) > 0 and float(terms["continuity"]) > 0


def test_training_mask_ratio_leaves_the_promoter_out_as_evaluation_does(soft):
  """Training logged mean(mask) with the promoter (forced to 1) and evaluation without it;
  both now report the mask outside the promoter."""
  task, params, batch = soft
  _, terms = task.loss(params, batch, jax.random.PRNGKey(1))
  out = task.apply(params, batch, train=True, rng=jax.random.PRNGKey(1))
  metrics = MaskMetrics()
  metrics.update(np.asarray(out.mask), np.zeros((2, LENGTH), bool),
                 ignore=promoter_positions(LENGTH, task.center_len))
  assert float(terms["mask_ratio"]) == pytest.approx(metrics.compute()["mask_ratio"],
                                                     rel=1e-4)
  assert float(terms["mask_ratio"]) < float(jnp.mean(out.mask))  # the promoter is all 1


def test_peaks_feed_the_predictor_mask():
  task = build_task(_config("macs3_mask"))
  batch = _batch()
  params = task.init(jax.random.PRNGKey(0), batch)
  out = task.apply(params, batch)
  outside = ~promoter_positions(LENGTH, task.center_len)
  want = np.where(np.asarray(batch.blacklist), 0.0, np.asarray(batch.peaks, np.float32))
  np.testing.assert_array_equal(np.asarray(out.mask)[:, outside], want[:, outside])


def test_generator_params_are_an_argument_of_the_steps(soft):
  """A generator_top run's frozen generator params enter every jitted step as an argument
  (they were closed over and compiled in as constants): new frozen values change the
  output of the same compiled step."""
  _, gen_params, _ = soft
  top = _config("seq2exp_retrain_top10")
  # The top fraction must reach past the promoter (forced to 1, so always on top).
  top.mask.update(generator_workdir="unused", top_fraction=0.8)
  task = build_task(top, load_generator=lambda workdir: (_config("seq2exp_soft"),
                                                          gen_params))
  # Without signals the signal prior is the same everywhere: the generator alone ranks.
  batch = _batch().replace(signals=np.zeros((2, LENGTH, 3), np.float32))
  params = task.init(jax.random.PRNGKey(0), batch)
  step = make_eval_step(task)
  first = step(params, batch)["mask"]
  other = jax.tree.map(lambda x: -x, gen_params)
  second = step.jitted(params, batch, other)["mask"]
  assert not np.array_equal(np.asarray(first), np.asarray(second))
  assert step.jitted._cache_size() == 1  # one compilation served both


def test_the_originals_options_reach_the_model_through_config_overrides():
  """`--config.model...` sets the original's options; the task feeds the batch fields they
  read (the include list, the peaks) and refuses a batch without them."""
  c = _config("seq2exp_soft")
  configs.apply_overrides(c, ["model.include_list=hard", "model.merge_peak_mask=true",
                              "model.bottleneck.test_top=0.25", "model.use_rna_feat=false"])
  task = build_task(c)
  rng = np.random.default_rng(3)
  batch = _batch().replace(includelist=rng.random((2, LENGTH)) < 0.1)
  params = task.init(jax.random.PRNGKey(0), batch)
  out = task.apply(params, batch)
  mask = np.asarray(out.mask)
  assert np.all(mask[np.asarray(batch.includelist)] == 1.0)
  outside = ~promoter_positions(LENGTH, task.center_len) & ~np.asarray(batch.includelist)
  assert set(np.unique(mask[outside])) <= {0.0, 1.0}  # the top-k mask, minus the rules
  zeroed = batch.replace(signals=batch.signals * batch.peaks[..., None])
  np.testing.assert_allclose(task.apply(params, zeroed).prediction, out.prediction,
                             rtol=1e-6)  # signals outside the peaks are never read
  with pytest.raises(Exception, match="includelist"):
    task.apply(params, batch.replace(includelist=None))
