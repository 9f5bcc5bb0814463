"""The pieces of the links table and its benchmark scoring, without a model: AUPRC and
precision at 70% recall against independent computations, the matching rules, both
benchmark layouts, candidate files and the table's rows."""

from __future__ import annotations

import numpy as np
import pytest

from data_pipeline.errors import DataFormatError
from seq2exp_jax.outputs import crispr_benchmark as bench
from seq2exp_jax.outputs import link_metrics as lm
from seq2exp_jax.outputs import links


def _ap_by_hand(labels, scores) -> float:
  """Mean over positives of the precision among the items scoring at least as high."""
  labels, scores = np.asarray(labels, bool), np.asarray(scores, float)
  return float(np.mean([labels[scores >= s].mean() for s in scores[labels]]))


def test_average_precision_matches_independent_computations_with_ties():
  rng = np.random.default_rng(0)
  for _ in range(20):
    n = int(rng.integers(5, 60))
    labels = rng.uniform(size=n) < 0.3
    labels[0] = True
    scores = np.round(rng.normal(size=n), 1)  # many ties
    assert lm.average_precision(labels, scores) == pytest.approx(_ap_by_hand(labels, scores))
  sklearn = pytest.importorskip("sklearn.metrics")
  assert lm.average_precision(labels, scores) == pytest.approx(
      sklearn.average_precision_score(labels, scores))
  assert lm.average_precision([True, False, True], [3.0, 2.0, 1.0]) == pytest.approx(
      (1 + 2 / 3) / 2)
  assert np.isnan(lm.average_precision([False, False], [1.0, 2.0]))


def test_precision_at_70pct_recall_is_at_the_first_threshold_reaching_it():
  labels = [True, False, True, True, False, False, True, False, False, True]
  scores = np.arange(10, 0, -1.0)
  # Recall reaches 4/5 = 0.8 >= 0.7 at the 7th item: 4 positives among 7.
  assert lm.precision_at_recall(labels, scores) == (pytest.approx(4 / 7), 4.0)


def _pair(start, end, gene, positive, tss=None, line=2):
  return bench.Pair("chr1", start, end, gene, None, tss, positive, line)


def _link(start, end, gene, score, abc, distance=0.0):
  return lm.Link("chr1", start, end, (gene, f"ENS_{gene}"),
                 {"Score": score, "ABC.Score": abc, "distance": distance})


def test_matching_aggregates_overlaps_fills_zero_and_drops_unlinked_genes():
  pairs = [_pair(100, 300, "A", True), _pair(1000, 1100, "A", False),
           _pair(100, 300, "B", False), _pair(100, 300, "C", True)]
  found = lm.match(pairs, [_link(50, 150, "A", 0.2, 0.1, 500.0),
                           _link(250, 400, "A", 0.7, 0.3, 300.0),
                           _link(500, 600, "B", 0.9, 0.5), _link(120, 130, "other", 1, 1)])
  assert [p.gene for p in found.pairs] == ["A", "A", "B"] and found.uncovered == 1
  assert found.matched.tolist() == [True, False, False]
  assert found.scores["Score"].tolist() == pytest.approx([0.7, 0.0, 0.0])  # max
  assert found.scores["ABC.Score"].tolist() == pytest.approx([0.4, 0.0, 0.0])  # sum
  assert found.scores["distance"].tolist() == [-300.0, -np.inf, -np.inf]
  with_tss = lm.match([_pair(100, 300, "A", True, tss=1200)], [_link(50, 150, "A", 1, 1)])
  assert with_tss.scores["distance"].tolist() == [-1000.0]
  by_ensembl = lm.match([bench.Pair("chr1", 0, 60, "?", "ENS_A", None, True, 2)],
                        [_link(50, 150, "A", 0.5, 0.5)])
  assert by_ensembl.scores["Score"].tolist() == [0.5]


def test_peak_coverage_of_tested_elements():
  merged = {"chr1": (np.array([0, 50]), np.array([20, 60]))}
  assert lm.covered_fraction(merged, "chr1", 10, 60) == pytest.approx(20 / 50)
  assert lm.covered_fraction(merged, "chr2", 10, 60) == 0.0


def test_read_peaks_merges_overlaps(tmp_path):
  path = tmp_path / "p.narrowPeak"
  path.write_text("chr1\t5\t20\tp\nchr1\t0\t10\tp\nchr1\t50\t60\tp\n")
  starts, ends = lm.read_peaks(path)["chr1"]
  assert starts.tolist() == [0, 50] and ends.tolist() == [20, 60]


def test_fulco_table_layout_with_its_title_row(tmp_path):
  path = tmp_path / "fulco_s6a.tsv"
  rows = [["chr8", "100", "600", "e1", "MYC", "genic", "K562", "-0.2", "0.001", "TRUE"],
          ["chr8", "700", "900", "e2", "MYC", "genic", "K562", "0.05", "0.001", "TRUE"],
          ["chr8", "1000", "1500", "e3", "MYC", "genic", "K562", "-0.01", "0.8", "FALSE"]]
  fill = ["NA"] * (len(bench.FULCO_COLUMNS) - 10)
  text = "Supplementary Table 6a. CRISPRi-FlowFISH\n" + "\t".join(bench.FULCO_COLUMNS) + "\n"
  for row in rows:
    values = row + fill
    values[bench.FULCO_COLUMNS.index("Gene TSS")] = "5000"
    text += "\t".join(values) + "\n"
  path.write_text(text)
  layout, pairs, invalid = bench.read_benchmark(path)
  assert layout == "Fulco2019" and invalid == 0
  assert [(p.start, p.gene, p.tss, p.positive) for p in pairs] == [
      (100, "MYC", 5000, True), (700, "MYC", 5000, False), (1000, "MYC", 5000, False)]


def test_benchmark_values_are_checked_naming_line_and_column(tmp_path):
  row = dict.fromkeys(bench.EP_COLUMNS, "NA")
  row.update(chrom="chr1", chromStart="10", chromEnd="20", measuredGeneSymbol="G",
             ValidConnection="TRUE", Regulated="maybe")
  path = tmp_path / "b.tsv"
  bench.write_benchmark(path, [row])
  with pytest.raises(DataFormatError, match=r"line 2: column 'Regulated' is 'maybe'"):
    bench.read_benchmark(path)
  row.update(Regulated="TRUE", ValidConnection="overlaps potential promoter")
  bench.write_benchmark(path, [row])
  assert bench.read_benchmark(path)[1:] == ([], 1)


def test_candidates_from_bed_and_abc_tables(tmp_path):
  bed = tmp_path / "c.bed"
  bed.write_text("track name=x\nchr1\t50\t80\tENSG1:causal\t1\t.\nchr1\t10\t20\n")
  abc = tmp_path / "EnhancerList.txt"
  abc.write_text("chr\tstart\tend\tname\tclass\tactivity_base\n"
                 "chr1\t30\t40\tintergenic|chr1:30-40\tintergenic\t1.5\n")
  found = links.read_candidates([bed, abc], {"chr1": 100})["chr1"]
  assert [(c.start, c.name, c.klass) for c in found] == [
      (10, "chr1:10-20", None), (30, "intergenic|chr1:30-40", "intergenic"),
      (50, "ENSG1:causal", "causal")]
  assert [(c.start, c.end) for c in links.in_window({"chr1": found}, "chr1", 15, 55)] == [
      (15, 20), (30, 40), (50, 55)]
  bed.write_text("chr1\t90\t120\tpast\n")
  with pytest.raises(DataFormatError, match=r"c.bed line 1: end 120 is past chr1's length"):
    links.read_candidates([bed], {"chr1": 100})


def test_gene_rows_features_and_abc_normalisation():
  length = 100
  gene = links.GeneWindow("ENSG1", "G1", "chr1", tss=1050, length=length, cell_type="K562")
  signals = np.zeros((length, 3), np.float32)
  signals[10:20, 0], signals[10:20, 1] = 4.0, 1.0  # H3K27ac, DNase
  signals[:, 2] = np.log10(1 + 3.0)  # contact 3 everywhere
  mask = np.linspace(0, 1, length, dtype=np.float32)
  elements = [links.Candidate("chr1", 1010, 1020, "a"), links.Candidate("chr1", 1060, 1070, "b")]
  rows = links.gene_rows(gene, elements, signals=signals, mask=mask,
                         peaks=np.arange(length) < 15, prediction=1.5, deletion=[-0.2, 0.0],
                         keep_alone=[0.1, 0.0], score="deletion")
  a, b = rows
  assert float(a["activity_base"]) == pytest.approx(np.sqrt(40 * 10))
  assert float(a["hic_contact"]) == pytest.approx(3.0, rel=1e-5)
  assert float(a["ABC.Score"]) == pytest.approx(1.0) and float(b["ABC.Score"]) == 0.0
  assert float(a["MACS3_overlap"]) == 0.5 and a["distance"] == "35"
  assert float(a["mask_mean"]) == pytest.approx(mask[10:20].mean(), rel=1e-5)
  assert float(a["Score"]) == pytest.approx(0.2) and a["class"] == "candidate"
  text = links.links_text(rows[::-1])
  assert text.splitlines()[0].split("\t") == list(links.LINK_COLUMNS)
  assert [line.split("\t")[3] for line in text.splitlines()[1:]] == ["a", "b"]
