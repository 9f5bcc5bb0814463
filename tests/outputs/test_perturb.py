"""In-silico deletion and keep-alone (seq2exp_jax/outputs/perturb.py) on a small random
Seq2Exp: deleting nothing changes nothing, bit for bit; each effect equals the model run on
a copy perturbed by hand; one compilation per shape."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from data_pipeline.batch import Batch
from seq2exp_jax.model.promoter import promoter_positions
from seq2exp_jax.model.seq2exp import Seq2Exp
from seq2exp_jax.model.beta_mask import BetaMask
from seq2exp_jax.model.ssm_config import SSMConfig
from seq2exp_jax.outputs import perturb

LENGTH, CENTER, GENES, CHUNK = 64, 8, 3, 4


def _batch(seed: int = 0) -> Batch:
  rng = np.random.default_rng(seed)
  return Batch(
      dna=np.eye(5, 4, dtype=np.float32)[rng.integers(0, 5, (GENES, LENGTH))],
      signals=rng.gamma(0.5, size=(GENES, LENGTH, 3)).astype(np.float32),
      rna_feat=rng.normal(size=(GENES, 9)).astype(np.float32),
      blacklist=np.zeros((GENES, LENGTH), bool),
      peaks=rng.uniform(size=(GENES, LENGTH)) < 0.3)


@functools.cache
def _model():
  model = Seq2Exp(backbone=SSMConfig(d_model=8), center_len=CENTER, n_gen_layer=1,
                  n_enc_layer=1, bottleneck=BetaMask(prior_scale_factor=10.0, beta_min=1.0))
  b = jax.tree.map(jnp.asarray, _batch())
  params = jax.jit(model.init)({"params": jax.random.PRNGKey(0), "mask": jax.random.PRNGKey(1)},
                               b.dna, b.signals, b.rna_feat, b.blacklist)["params"]

  def apply_fn(p, batch):
    return model.apply({"params": p}, batch.dna, batch.signals, batch.rna_feat,
                       batch.blacklist, train=False)
  return apply_fn, params


def test_deleting_nothing_changes_nothing_exactly():
  apply_fn, params = _model()
  keep = promoter_positions(LENGTH, CENTER)
  empty = [np.array([[5, 5], [0, 0], [LENGTH, LENGTH], [30, 30]])] * GENES
  # 30 copies in chunks of 4 put the empty deletions at every position of a chunk and in
  # chunks after the one holding the unperturbed window.
  for e in perturb.perturbation_effects(apply_fn, params, _batch(), empty, keep, chunk=CHUNK):
    assert np.all(e.deletion == 0.0) and np.all(e.keep_alone == 0.0)
  # Keeping everything alone is the window itself: the promoter-only row differs from it.
  whole = perturb.perturbation_effects(apply_fn, params, _batch(), [[(0, LENGTH)]] * GENES,
                                       keep, chunk=CHUNK)
  for e in whole:
    assert e.keep_alone[0] == pytest.approx(e.prediction - e.promoter_only, abs=1e-6)
    assert e.promoter_only != e.prediction


def _by_hand(apply_fn, params, batch, gene, kept):
  """The model on gene `gene` alone with the bases where `kept` is False dropped."""
  f = kept.astype(np.float32)
  one = Batch(dna=batch.dna[gene:gene + 1] * f[None, :, None],
              signals=batch.signals[gene:gene + 1] * f[None, :, None],
              rna_feat=batch.rna_feat[gene:gene + 1], blacklist=batch.blacklist[gene:gene + 1],
              peaks=batch.peaks[gene:gene + 1] & kept[None])
  return float(_jitted(apply_fn)(params, one).prediction[0])


@functools.cache
def _jitted(apply_fn):
  return jax.jit(apply_fn)


def test_effects_equal_the_model_on_copies_perturbed_by_hand():
  apply_fn, params = _model()
  batch, keep = _batch(1), promoter_positions(LENGTH, CENTER)
  intervals = [np.array([[2, 10], [40, 64]]), None, np.array([[20, 27]])]
  effects = perturb.perturbation_effects(apply_fn, params, batch, intervals, keep,
                                         chunk=CHUNK)
  assert effects[1] is None
  everything = np.ones(LENGTH, bool)
  for g in (0, 2):
    base = _by_hand(apply_fn, params, batch, g, everything)
    promoter = _by_hand(apply_fn, params, batch, g, keep)
    assert effects[g].prediction == pytest.approx(base, abs=1e-5)
    assert effects[g].promoter_only == pytest.approx(promoter, abs=1e-5)
    for k, (s, e) in enumerate(intervals[g]):
      inside = (np.arange(LENGTH) >= s) & (np.arange(LENGTH) < e)
      assert effects[g].deletion[k] == pytest.approx(
          _by_hand(apply_fn, params, batch, g, ~inside) - base, abs=1e-5)
      assert effects[g].keep_alone[k] == pytest.approx(
          _by_hand(apply_fn, params, batch, g, inside | keep) - promoter, abs=1e-5)
    assert np.any(np.abs(effects[g].deletion) > 1e-7)


def test_compiled_once_per_shape_whatever_the_number_of_elements():
  apply_fn, params = _model()
  batch, compiled = _batch(2), perturb._predict_copies(apply_fn)  # pylint: disable=protected-access
  sizes = []
  for n in (1, 5, 11):
    intervals = [np.array([[i, i + 3] for i in range(n)])] * GENES
    perturb.perturbation_effects(apply_fn, params, batch, intervals, chunk=CHUNK)
    sizes.append(compiled._cache_size())  # pylint: disable=protected-access
  assert sizes[0] >= 1 and sizes == sizes[:1] * 3


def test_an_interval_outside_the_window_is_refused():
  apply_fn, params = _model()
  with pytest.raises(ValueError, match="gene 1: interval \\[60, 70\\]"):
    perturb.perturbation_effects(apply_fn, params, _batch(), [[], [(60, 70)], None])
