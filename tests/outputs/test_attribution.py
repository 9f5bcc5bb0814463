"""Attribution (seq2exp_jax/outputs/attribution.py) on a small random Seq2Exp: gradient x
input against finite differences, memory linear in the window, ISM against mutants run
one by one, and the tracks' coordinates."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pyBigWig
import pytest

from data_pipeline.batch import Batch
from seq2exp_jax.model.seq2exp import Seq2Exp
from seq2exp_jax.model.ssm_config import SSMConfig
from seq2exp_jax.outputs import attribution as attr

LENGTH = 128


def _batch(batch: int, length: int = LENGTH, seed: int = 0) -> Batch:
  rng = np.random.default_rng(seed)
  dna = np.eye(5, 4, dtype=np.float32)[rng.integers(0, 5, (batch, length))]  # 4 -> N
  return jax.tree.map(jnp.asarray, Batch(
      dna=dna, signals=rng.gamma(0.5, 2.0, (batch, length, 3)).astype(np.float32),
      rna_feat=rng.normal(size=(batch, 9)).astype(np.float32),
      blacklist=rng.uniform(size=(batch, length)) < 0.05))


@functools.cache
def _model():
  model = Seq2Exp(n_gen_layer=1, n_enc_layer=1, backbone=SSMConfig(d_model=16), center_len=8)
  b = _batch(1)
  params = jax.jit(model.init)(jax.random.PRNGKey(0), b.dna, b.signals, b.rna_feat,
                               b.blacklist)["params"]

  def apply_fn(p, batch):
    return model.apply({"params": p}, jnp.asarray(batch.dna), jnp.asarray(batch.signals),
                       jnp.asarray(batch.rna_feat), jnp.asarray(batch.blacklist))
  return apply_fn, params


@functools.cache
def _predict():
  """The prediction alone, jitted: (params, batch) -> (B,)."""
  apply_fn, _ = _model()
  return jax.jit(lambda p, b: apply_fn(p, b).prediction)


def _scaled(batch: Batch, field: str, factor: float, track: int | None = None) -> Batch:
  x = np.asarray(getattr(batch, field)).copy()
  if track is None:
    x = x * factor
  else:
    x[..., track] *= factor
  return batch.replace(**{field: x})


def test_gradient_x_input_sums_are_the_directional_derivative():
  apply_fn, params = _model()
  batch = _batch(4, seed=1)
  out = jax.device_get(attr.make_gradient_x_input(apply_fn)(params, batch))
  predict = _predict()
  np.testing.assert_allclose(out["prediction"], predict(params, batch), rtol=1e-5)
  assert out["dna"].shape == (4, LENGTH) and out["signals"].shape == (4, LENGTH, 3)
  assert out["mask"].shape == (4, LENGTH)
  eps = 1e-2

  def derivative(field, track=None):
    up = predict(params, _scaled(batch, field, 1 + eps, track))
    down = predict(params, _scaled(batch, field, 1 - eps, track))
    return (np.asarray(up, np.float64) - np.asarray(down, np.float64)) / (2 * eps)

  for name, got, want in [("dna", out["dna"].sum(1), derivative("dna"))] + [
      (f"signal {s}", out["signals"][..., s].sum(1), derivative("signals", s))
      for s in range(3)]:
    assert np.abs(want).max() > 1e-3, (name, want)  # a derivative to check
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4 * np.abs(want).max(),
                               err_msg=name)
  # Attribution sits at the base present: no gradient mass at N.
  n_rows = np.asarray(batch.dna).sum(-1) == 0
  assert np.all(out["dna"][n_rows] == 0)


def _temp_bytes(length: int) -> int:
  apply_fn, params = _model()
  step = attr.make_gradient_x_input(apply_fn)
  batch = jax.eval_shape(lambda: _batch(1, length))
  return step.lower(params, batch).compile().memory_analysis().temp_size_in_bytes


def test_gradient_memory_is_linear_in_the_window():
  small, big = _temp_bytes(4096), _temp_bytes(16384)
  assert big <= 4.5 * small, (small, big)  # (L, L) anywhere would be 16x


def test_mutation_effects_match_mutants_run_one_by_one():
  apply_fn, params = _model()
  row = _batch(1, seed=2)
  stored = attr.codes_of(np.asarray(row.dna[0]))
  positions = np.array([0, 5, 5, 64, 127, 30, 30])
  codes = np.array([stored[0], 1, stored[5], 4, 2, stored[30], 0])
  chunk = 4  # two calls, the last padded
  reference, delta = attr.mutation_effects(attr.make_mutation_fn(apply_fn, chunk), params,
                                           row, positions, codes, chunk)
  predict = _predict()
  np.testing.assert_allclose(reference, float(predict(params, row)[0]), rtol=1e-6)
  identity = codes == stored[positions]
  assert np.all(np.abs(delta[identity]) <= 1e-6), delta  # a base to itself: no effect
  for p, c, d in zip(positions, codes, delta):
    dna = np.asarray(row.dna).copy()
    dna[0, p] = np.eye(5, 4)[c]
    want = float(predict(params, row.replace(dna=jnp.asarray(dna)))[0]) - reference
    np.testing.assert_allclose(d, want, rtol=1e-4, atol=1e-6)
  assert np.abs(delta[~identity]).max() > 0


def test_saturation_mutagenesis_lists_every_other_base():
  apply_fn, params = _model()
  row = _batch(1, seed=3)
  stored = attr.codes_of(np.asarray(row.dna[0]))
  window = np.arange(60, 70)
  result = attr.saturation_mutagenesis(attr.make_mutation_fn(apply_fn, 8), params, row,
                                       window, 8, ensid="G", chrom="chr1", tss=1000)
  expected = [(p, b) for p in window for b in range(4) if b != stored[p]]
  assert list(zip(result.positions, result.alt)) == expected
  assert np.all(result.ref == stored[result.positions])
  assert np.all(result.ref != result.alt)
  with pytest.raises(ValueError, match="no positions"):
    attr.saturation_mutagenesis(attr.make_mutation_fn(apply_fn, 8), params, row,
                                np.array([], int), 8, ensid="G", chrom="chr1", tss=1000)


def test_nearest_tss_cells_split_overlapping_windows():
  a, b = np.full(100, 1.0), np.full(100, 2.0)  # TSS 200 and 260: windows overlap 40 bases
  cells = attr.nearest_tss_cells([("chr1", 260, b), ("chr1", 200, a), ("chr2", 200, a)])
  assert [(c, s, len(v)) for c, s, v in cells] == [("chr1", 150, 81), ("chr1", 231, 79),
                                                   ("chr2", 150, 100)]
  assert cells[0][2][0] == 1.0 and cells[1][2][0] == 2.0


def test_tracks_and_ism_files_hold_window_coordinates(tmp_path):
  sizes = {"chr1": 5000, "chr2": 800}
  rng = np.random.default_rng(0)
  genes = [attr.GeneAttribution("G1", "chr1", 1000, 0.5, rng.normal(size=LENGTH),
                                rng.normal(size=(LENGTH, 3))),
           attr.GeneAttribution("G2", "chr2", 30, 0.1, rng.normal(size=LENGTH),
                                rng.normal(size=(LENGTH, 3)))]  # hangs over chr2's start
  names = attr.write_attribution_tracks(tmp_path, sizes, genes)
  assert names == ["dna.bw", "H3K27ac.bw", "DNase.bw", "HiC.bw"]
  for name in attr.TRACKS:
    with pyBigWig.open(str(tmp_path / f"{name}.bw")) as bw:
      assert bw.chroms() == sizes
      got = np.array(bw.values("chr1", 1000 - LENGTH // 2, 1000 + LENGTH // 2))
      np.testing.assert_allclose(got, genes[0].track(name), rtol=1e-6)
      np.testing.assert_allclose(bw.values("chr2", 0, 30 + LENGTH // 2),
                                 genes[1].track(name)[LENGTH // 2 - 30:], rtol=1e-6)
      assert bw.intervals("chr1", 0, 1000 - LENGTH // 2) is None
  ism = attr.Mutagenesis("G1", "chr1", 1000, 0.5, np.array([64, 64, 70]),
                         np.array([0, 0, 4], np.uint8), np.array([1, 3, 2], np.uint8),
                         np.array([0.1, -0.3, 0.2]))
  assert attr.write_ism(tmp_path / "ism.tsv", tmp_path / "ism.bw", sizes, [ism], LENGTH) == 3
  lines = (tmp_path / "ism.tsv").read_text().splitlines()
  assert lines == ["chr\tpos\tref\talt\tensid\tdelta", "chr1\t1001\tA\tC\tG1\t0.1",
                   "chr1\t1001\tA\tT\tG1\t-0.3", "chr1\t1007\tN\tG\tG1\t0.2"]
  with pyBigWig.open(str(tmp_path / "ism.bw")) as bw:
    np.testing.assert_allclose(bw.values("chr1", 1000, 1007), [0.3, 0, 0, 0, 0, 0, 0.2],
                               rtol=1e-6)
