"""`seq2exp links` and `seq2exp evaluate-links` on the tiny synthetic genome with a 2-step
Seq2Exp-soft run: the table opens with pandas and tabix, its rows sit in their genes'
windows, and a benchmark in EPCrisprBenchmark's exact layout, filled from the genome's
truth, is scored as an independent computation scores it; bad inputs give one line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import REPO
from conftest_data import smoke_soft_run, tiny_synthetic
from data_pipeline.layout import GeneExpLayout
from seq2exp_jax import cli
from seq2exp_jax.outputs import crispr_benchmark as bench
from seq2exp_jax.outputs.links import LINK_COLUMNS

WINDOW = 4096  # the tiny genome's elements lie 1-4 kb from their TSS


@pytest.fixture(scope="module")
def data(tmp_path_factory):
  return tiny_synthetic(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
  """A 2-step seq2exp_soft smoke run reading 4 kb windows."""
  return smoke_soft_run(data[1], tmp_path_factory.mktemp("links_run"), WINDOW)


def _gene_table(root):
  return GeneExpLayout(root).gene_table


@pytest.fixture(scope="module")
def links(data, run, tmp_path_factory):
  root, ds = data
  out = tmp_path_factory.mktemp("links") / "links.tsv"
  assert cli.main(["links", "--workdir", str(run), "--data", str(ds), "--split", "train",
                   "--out", str(out), "--elements", str(root / "truth" / "causal_elements.bed"),
                   str(root / "truth" / "decoys.bed"), "--gene-names",
                   str(_gene_table(root)), "--chunk", "4"]) == 0
  return out


def test_links_table_opens_with_pandas_and_sits_in_the_genes_windows(data, links):
  table = pd.read_csv(links, sep="\t")
  assert tuple(table.columns) == LINK_COLUMNS and len(table) > 5
  genes = pd.read_csv(_gene_table(data[0]), sep="\t").set_index("name")
  for row in table.itertuples():
    tss = genes.loc[row.TargetGeneEnsembl_ID, "tss"]
    assert row.TargetGeneTSS == tss and row.TargetGene == genes.loc[row.TargetGeneEnsembl_ID,
                                                                     "gene_name"]
    assert tss - WINDOW // 2 <= row.start < row.end <= tss + WINDOW // 2
    assert row.distance == abs((row.start + row.end) // 2 - tss)
  assert set(table["class"]) <= {"causal", "dead", "split", "insulated"}
  assert "causal" in set(table["class"])
  assert table.sort_values(["chr", "start"]).index.tolist() == table.index.tolist()
  assert table["Score"].tolist() == table["mask_mean"].tolist()
  assert ((table.mask_mean >= 0) & (table.mask_mean <= table.mask_max)
          & (table.mask_max <= 1)).all()
  abc = table.groupby("TargetGene")["ABC.Score"].sum()
  assert np.allclose(abc[abc > 0], 1.0, atol=1e-4)
  assert np.isfinite(table[["deletion_effect", "keep_alone_effect", "prediction"]]).all().all()


def test_links_are_bgzipped_and_tabix_indexed(links):
  pysam = pytest.importorskip("pysam")
  table = pd.read_csv(links, sep="\t")
  first = table.iloc[0]
  with pysam.TabixFile(str(links) + ".gz") as tbx:
    fetched = list(tbx.fetch(first.chr, int(first.start), int(first.end)))
  assert fetched and all(line.split("\t")[0] == first.chr for line in fetched)
  assert pd.read_csv(str(links) + ".gz", sep="\t").equals(table)


def test_without_elements_the_mask_runs_are_the_candidates(data, run, tmp_path):
  out = tmp_path / "runs.tsv"
  assert cli.main(["links", "--workdir", str(run), "--data", str(data[1]), "--split", "train",
                   "--out", str(out), "--threshold", "0.0", "--min-length", "1"]) == 0
  table = pd.read_csv(out, sep="\t")
  assert len(table) and table["name"].str.startswith("mask_run|").all()
  assert set(table["class"]) <= {"causal", "decoy", "other"}


def _average_precision_by_hand(labels, scores) -> float:
  """Mean over positives of the precision among the pairs scoring at least as high."""
  labels, scores = np.asarray(labels, bool), np.asarray(scores, float)
  return float(np.mean([labels[scores >= s].mean() for s in scores[labels]]))


def test_evaluate_links_on_a_benchmark_in_the_exact_layout(data, links, tmp_path, capsys):
  root, ds = data
  table = pd.read_csv(links, sep="\t")
  rows = bench.synthetic_rows(root, genes=set(table.TargetGeneEnsembl_ID))
  benchmark = tmp_path / "EPCrisprBenchmark_synthetic.tsv"
  bench.write_benchmark(benchmark, rows)
  expected = pd.read_csv(benchmark, sep="\t")
  assert tuple(expected.columns) == bench.EP_COLUMNS
  out = tmp_path / "eval"
  assert cli.main(["evaluate-links", "--links", str(links), "--benchmark", str(benchmark),
                   "--out", str(out), "--peaks",
                   str(ds / "macs3_dnase_peaks.narrowPeak"), "--chrom-sizes", str(ds)]) == 0
  metrics = pd.read_csv(out / "metrics.tsv", sep="\t").set_index("predictor")
  assert (out / "precision_recall.png").stat().st_size > 0
  # By hand: each tested element's Score from the links row of its gene overlapping it (the
  # truth elements are the candidates, so each has at most one), 0 without one.
  score = []
  for pair in expected.itertuples():
    hit = table[(table.chr == pair.chrom) & (table.TargetGene == pair.measuredGeneSymbol)
                & (table.start < pair.chromEnd) & (table.end > pair.chromStart)]
    assert len(hit) <= 1
    score.append(hit.Score.iloc[0] if len(hit) else 0.0)
  labels = expected.Regulated.to_numpy(bool)
  assert metrics.loc["Score", "pairs"] == len(expected)
  assert metrics.loc["Score", "positives"] == labels.sum() > 0
  assert metrics.loc["Score", "AUPRC"] == pytest.approx(
      _average_precision_by_hand(labels, score), abs=1e-5)
  distance = -np.abs((expected.chromStart + expected.chromEnd) // 2 - expected.startTSS)
  assert metrics.loc["distance", "AUPRC"] == pytest.approx(
      _average_precision_by_hand(labels, distance), abs=1e-5)
  assert set(metrics.index) == {"Score", "ABC.Score", "activity x contact", "deletion",
                                "MACS3", "distance"}
  assert "AUPRC" in capsys.readouterr().out


def test_a_benchmark_missing_a_column_is_refused_naming_it(data, links, tmp_path, capsys):
  rows = bench.synthetic_rows(data[0])
  path = tmp_path / "bad.tsv"
  bench.write_benchmark(path, rows)
  frame = pd.read_csv(path, sep="\t").drop(columns="Regulated")
  frame.to_csv(path, sep="\t", index=False)
  assert cli.main(["evaluate-links", "--links", str(links), "--benchmark", str(path)]) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "'Regulated'" in err and str(path) in err


def test_a_link_on_an_unknown_chromosome_is_refused_naming_the_line(data, links, tmp_path,
                                                                    capsys):
  lines = links.read_text().splitlines()
  lines[3] = "chrUn_bad\t" + lines[3].split("\t", 1)[1]
  bad = tmp_path / "bad_links.tsv"
  bad.write_text("\n".join(lines) + "\n")
  benchmark = tmp_path / "b.tsv"
  bench.write_benchmark(benchmark, bench.synthetic_rows(data[0]))
  assert cli.main(["evaluate-links", "--links", str(bad), "--benchmark", str(benchmark),
                   "--chrom-sizes", str(data[1])]) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and f"{bad} line 4" in err and "'chrUn_bad'" in err


def test_an_element_on_an_unknown_chromosome_is_refused_naming_the_line(data, run, tmp_path,
                                                                        capsys):
  bed = tmp_path / "elements.bed"
  ok = (data[0] / "truth" / "causal_elements.bed").read_text().splitlines()[0]
  bed.write_text(f"{ok}\nchrZ\t5\t50\tbad\n")
  assert cli.main(["links", "--workdir", str(run), "--data", str(data[1]), "--out",
                   str(tmp_path / "l.tsv"), "--elements", str(bed)]) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and f"{bed} line 2" in err and "'chrZ'" in err
  assert not (tmp_path / "l.tsv").exists()


def test_params_and_config_instead_of_a_workdir_give_the_same_links(data, run, links, tmp_path):
  root, ds = data
  out = tmp_path / "from_params.tsv"
  assert cli.main(["links", "--params", str(run), "--config",
                   str(REPO / "experiments" / "seq2exp_soft.py:smoke"),
                   f"--config.data.window={WINDOW}", "--data", str(ds), "--split", "train",
                   "--out", str(out), "--elements", str(root / "truth" / "causal_elements.bed"),
                   str(root / "truth" / "decoys.bed"), "--gene-names",
                   str(_gene_table(root)), "--chunk", "4"]) == 0
  assert out.read_text() == links.read_text()
