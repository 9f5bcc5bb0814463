"""Mask tracks: element calling, BED and bigWig export against brute-force expectations,
atomic writes, the chromosome lengths stored in a prepared data set, and the figures."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyBigWig
import pytest
import tensorflow_datasets as tfds

from conftest_data import tiny_synthetic
from data_pipeline import tfds_builder
from data_pipeline.layout import GeneExpLayout
from seq2exp_jax.outputs import plots
from seq2exp_jax.model.promoter import centre_start, promoter_positions
from seq2exp_jax.outputs import genome_tracks as tracks
from seq2exp_jax.outputs.genome_tracks import Element

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def brute_runs(mask, threshold, min_length=1, ignore=None):
  """A base-by-base reference of `tracks.mask_runs`."""
  runs, start = [], None
  for i in range(len(mask) + 1):
    on = i < len(mask) and mask[i] >= threshold and not (ignore is not None and ignore[i])
    if on and start is None:
      start = i
    elif not on and start is not None:
      if i - start >= min_length:
        part = np.asarray(mask[start:i], float)
        runs.append((start, i, part.mean(), part.max()))
      start = None
  return runs


def assert_runs(got, want):
  assert [(s, e) for s, e, _, _ in got] == [(s, e) for s, e, _, _ in want]
  np.testing.assert_allclose([r[2:] for r in got], [r[2:] for r in want], rtol=1e-12)


def test_mask_runs_hand_made():
  mask = np.array([0.9, 0.8, 0.1, 0.5, 0.6, 0.2, 0.7, 1.0])
  assert_runs(tracks.mask_runs(mask, 0.5),  # runs at both ends; the threshold is inclusive
              [(0, 2, 0.85, 0.9), (3, 5, 0.55, 0.6), (6, 8, 0.85, 1.0)])
  assert tracks.mask_runs(mask, 0.5, min_length=3) == []
  ignore = np.zeros(8, bool)
  ignore[[1, 7]] = True  # splits nothing off the middle, trims both end runs
  assert_runs(tracks.mask_runs(mask, 0.5, ignore=ignore),
              [(0, 1, 0.9, 0.9), (3, 5, 0.55, 0.6), (6, 7, 0.7, 0.7)])
  assert_runs(tracks.mask_runs(np.ones(5), 1.0), [(0, 5, 1.0, 1.0)])
  assert_runs(tracks.mask_runs(np.array([0.2, np.nan, 0.1]), 0.0),
              [(0, 1, 0.2, 0.2), (2, 3, 0.1, 0.1)])
  assert tracks.mask_runs(np.zeros(4), 0.5) == []
  with pytest.raises(ValueError, match="ignore: expected bool"):
    tracks.mask_runs(mask, 0.5, ignore=np.zeros(7, bool))


def test_mask_runs_match_brute_force():
  rng = np.random.default_rng(0)
  for _ in range(50):
    mask = np.round(rng.random(int(rng.integers(1, 60))), 1)
    ignore = rng.random(len(mask)) < 0.1
    min_length = int(rng.integers(1, 4))
    assert_runs(tracks.mask_runs(mask, 0.5, min_length=min_length, ignore=ignore),
                brute_runs(mask, 0.5, min_length, ignore))


def test_promoter_positions_are_the_models_promoter():
  assert np.flatnonzero(promoter_positions(10, 4)).tolist() == [3, 4, 5, 6]
  assert np.flatnonzero(promoter_positions(10, 3)).tolist() == [3, 4, 5]
  assert not promoter_positions(10, 0).any()
  for length, center in ((10, 3), (11, 4), (16384, 2000), (7, 7)):
    assert np.flatnonzero(promoter_positions(length, center))[0] == centre_start(
        length, center)
  with pytest.raises(ValueError, match="center_len 12"):
    promoter_positions(10, 12)


def test_elements_are_window_start_plus_run_and_clipped():
  mask = np.array([0, 0, 0.8, 0.6, 0, 0, 0, 0, 0.9, 0.9])
  assert tracks.window_start(1000, 10) == 995
  got = tracks.elements_from_mask("chr2", 1000, mask, "G1", threshold=0.5)
  assert got == [Element("chr2", 997, 999, "G1", pytest.approx(0.7)),
                 Element("chr2", 1003, 1005, "G1", pytest.approx(0.9))]
  # The promoter (central 4 of 10: indices 3..6) is never reported.
  got = tracks.elements_from_mask("chr2", 1000, mask, "G1", threshold=0.5,
                                  ignore=promoter_positions(10, 4))
  assert [(e.start, e.end) for e in got] == [(997, 998), (1003, 1005)]
  # Window [-2, 8) on a chromosome of length 6: the run is clipped and scored on [0, 6).
  mask = np.array([0.2, 0.2, 1, 1, 1, 1, 1, 1, 0.2, 0.2])
  (e,) = tracks.elements_from_mask("chr1", 3, mask, "G2", threshold=0.1, chrom_length=6)
  assert (e.start, e.end, e.score) == (0, 6, 1.0)
  (e,) = tracks.elements_from_mask("chr1", 3, mask, "G2", threshold=0.1)
  assert (e.start, e.end) == (0, 8) and e.score == pytest.approx(6.4 / 8)
  assert tracks.elements_from_mask("chr1", 3, mask, "G2", threshold=0.1, chrom_length=6,
                                   min_length=7) == []


def test_bed_round_trip_is_sorted_valid_bed6(tmp_path):
  elements = [Element("chr2", 50, 60, "G3", 0.42), Element("chr1", 10, 20, "G2", 1.2),
              Element("chr1", 10, 20, "G1", -0.1), Element("chr1", 5, 30, "G1", 0.5004)]
  path = tmp_path / "elements.bed"
  tracks.write_elements(path, elements)
  lines = path.read_text().splitlines()
  for line in lines:
    chrom, start, end, name, score, strand = line.split("\t")
    assert int(start) < int(end) and 0 <= int(score) <= 1000 and strand == "."
    assert score == str(int(score))
  assert [line.split("\t")[4] for line in lines] == ["500", "0", "1000", "420"]
  back = tracks.read_elements(path)
  want = sorted(elements, key=lambda e: (e.chrom, e.start, e.end, e.name))
  assert [(e.chrom, e.start, e.end, e.name) for e in back] == \
      [(e.chrom, e.start, e.end, e.name) for e in want]
  np.testing.assert_allclose([e.score for e in back],
                             np.clip([e.score for e in want], 0, 1), atol=5e-4)
  path.write_text("chr1\t10\t20\tG\t5\t.\nchr1\t30\tx\tG\t5\t.\n")
  with pytest.raises(ValueError, match=r"elements\.bed: line 2"):
    tracks.read_elements(path)
  with pytest.raises(ValueError, match="start < end"):
    tracks.write_elements(path, [Element("chr1", 5, 5, "G", 0.5)])


def expected_track(size, windows, chrom):
  """float32 (size,) max over the windows of `chrom`, NaN where no window covers."""
  out = np.full(size, np.nan, np.float32)
  for c, start, values in windows:
    for i, v in enumerate(np.asarray(values, np.float32)):
      if c == chrom and 0 <= start + i < size:
        out[start + i] = np.fmax(out[start + i], v)
  return out


@pytest.mark.parametrize("block", [7, tracks.BLOCK_BASES])
def test_bigwig_max_combines_and_clips(tmp_path, block):
  rng = np.random.default_rng(1)
  sizes = {"chrB": 400, "chrA": 300, "chrC": 50}
  windows = [("chrA", 20, np.round(rng.random(100), 1)),
             ("chrA", 70, np.round(rng.random(100), 1)),  # overlaps the first
             ("chrA", 250, np.full(100, 0.5)),  # runs past the end of chrA
             ("chrB", -30, np.full(60, 0.25)), ("chrB", 30, np.full(40, 0.25))]
  path = tmp_path / "mask.bw"
  tracks.write_mask_bigwig(path, sizes, windows, block=block)
  bw = pyBigWig.open(str(path))
  try:
    assert list(bw.chroms().items()) == list(sizes.items())
    for chrom, size in sizes.items():
      got = np.array(bw.values(chrom, 0, size), np.float32)
      np.testing.assert_array_equal(got, expected_track(size, windows, chrom), err_msg=chrom)
    # Equal neighbours are one entry, also across the two chrB windows and block borders.
    assert bw.intervals("chrB") == ((0, 70, 0.25),)
    assert bw.intervals("chrA")[-1] == (250, 300, 0.5)
    assert bw.intervals("chrC") is None
  finally:
    bw.close()


def test_bigwig_errors_and_atomic_writes(tmp_path, monkeypatch):
  path = tmp_path / "mask.bw"
  path.write_bytes(b"old")
  with pytest.raises(ValueError, match="'chrZ' not in chrom_sizes"):
    tracks.write_mask_bigwig(path, {"chr1": 100}, [("chrZ", 0, np.ones(10))])

  def failing(values):
    raise RuntimeError("simulated failure while writing")

  monkeypatch.setattr(tracks, "run_length", failing)
  with pytest.raises(RuntimeError, match="simulated"):
    tracks.write_mask_bigwig(path, {"chr1": 100}, [("chr1", 0, np.ones(10))])
  bed = tmp_path / "elements.bed"
  bed.write_text("old\n")
  with pytest.raises(ValueError, match="name"):
    tracks.write_elements(bed, [Element("chr1", 1, 2, "A", 0.5), Element("chr1", 5, 9, "a b", 1)])
  assert path.read_bytes() == b"old" and bed.read_text() == "old\n"
  assert sorted(p.name for p in tmp_path.iterdir()) == ["elements.bed", "mask.bw"]


def test_plots_write_png(tmp_path):
  rng = np.random.default_rng(2)
  target = rng.random(300)
  scatter = tmp_path / "scatter.png"
  plots.scatter_predictions(scatter, target, target + 0.1 * rng.normal(size=300),
                            title="test split", metrics={"pearson": 0.93, "mse": 0.01})
  length, start = 200_000, 1_000_000
  mask = np.zeros(length, np.float32)
  mask[90_000:110_000] = 1.0
  peaks = np.zeros(length, bool)
  peaks[[5, 6, 7, 150_000]] = True
  genes = tmp_path / "gene.png"
  plots.gene_tracks(genes, chrom="chr1", start=start, title="ENSG01", tss=start + length // 2,
                    tracks={"mask": mask, "DNase": rng.random(length)},
                    intervals={"MACS3 peaks": peaks, "truth: causal": mask > 0.5})
  for path in (scatter, genes):
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
  with pytest.raises(ValueError, match="shape"):
    plots.gene_tracks(tmp_path / "bad.png", chrom="chr1", start=0, title="x",
                      tracks={"mask": mask}, intervals={"peaks": peaks[:10]})
  with pytest.raises(ValueError, match="same shape|one shape"):
    plots.scatter_predictions(tmp_path / "bad.png", target, target[:5], title="x")
  assert sorted(p.name for p in tmp_path.iterdir()) == ["gene.png", "scatter.png"]
  pooled_starts, pooled = plots.max_pool(np.arange(10.0), 3)
  assert pooled_starts.tolist() == [0, 3, 6] and pooled.tolist() == [2, 5, 9]
