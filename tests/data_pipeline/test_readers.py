"""Readers of the GeneExp layout: windows equal independent slices of the files written by
`conftest_data.write_layout`; every kind of bad input gives a clear error.

`tests/data/real_fold_split.csv` and `tests/data/real_mrna_features.csv` are the first 40
genes of the real K562 tables of the public EPInformer repository (pinellolab/EPInformer,
data/: leave_chrom_out_crossvalidation_split_18377genes.csv, mRNA_halflife_features.csv).
"""

from __future__ import annotations

import json
import pathlib
import pickle

import numpy as np
import pytest

from conftest_data import (BLACKLIST, CHROMS, GENES, INCLUDELIST, WINDOW, expected_window,
                           interval_mask, write_bigwig, write_layout)
from data_pipeline import io
from data_pipeline.layout import GeneExpLayout
from data_pipeline.readers import genome, masks, tables
from data_pipeline.errors import DataFormatError, PickleNotAllowedError
from data_pipeline.readers.window import WindowReader, check_window_length

CODES = {"A": 0, "C": 1, "G": 2, "T": 3}


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
  return write_layout(tmp_path_factory.mktemp("layout"))


@pytest.fixture(scope="module")
def genes(fx):
  return {g.ensid: g for split in tables.load_genes(fx.layout).splits.values() for g in split}


@pytest.fixture(scope="module")
def examples(fx, genes):
  with WindowReader(fx.layout, WINDOW) as reader:
    return {e: reader.read(g) for e, g in genes.items()}


def fresh(tmp_path: pathlib.Path):
  """A layout of our own, for tests that break a file."""
  return write_layout(tmp_path / "root")


def test_dna_equals_fasta_slice_with_n_padding(fx, examples):
  for ensid, (chrom, tss, _, _) in GENES.items():
    text = fx.seq[chrom].decode().upper()
    codes = np.array([CODES.get(b, 4) for b in text], np.uint8)
    want = expected_window(codes, tss - WINDOW // 2, tss + WINDOW // 2, fill=4)
    np.testing.assert_array_equal(examples[ensid]["dna"], want, err_msg=ensid)
  # ENSG01 starts 400 bases before chr1, ENSG02 ends 300 bases after it.
  assert (examples["ENSG01"]["dna"][:400] == 4).all()
  assert (examples["ENSG02"]["dna"][-300:] == 4).all()
  assert examples["ENSG01"]["dna"].dtype == np.uint8


def test_encode_bases_soft_masked_and_ambiguous():
  np.testing.assert_array_equal(genome.encode_bases("ACGTacgtNnRYx-"),
                                [0, 1, 2, 3, 0, 1, 2, 3, 4, 4, 4, 4, 4, 4])


def test_signals_equal_bigwig_values_nan_zero_and_padding(fx, examples):
  for ensid, (chrom, tss, _, _) in GENES.items():
    s, e = tss - WINDOW // 2, tss + WINDOW // 2
    sig = examples[ensid]["signals"]
    assert sig.shape == (WINDOW, 3) and sig.dtype == np.float32
    np.testing.assert_allclose(sig[:, 0], expected_window(fx.h3k27ac[chrom], s, e), rtol=1e-6)
    np.testing.assert_allclose(sig[:, 1], expected_window(fx.dnase[chrom], s, e), rtol=1e-6)
  # chr1 beyond 2000 is not stored in the bigWigs: 0, not NaN.
  assert np.isfinite(examples["ENSG02"]["signals"]).all()
  assert (examples["ENSG02"]["signals"][:, :2] == 0).all()  # [2300, 3300) all uncovered


def test_hic_placed_on_the_window_and_logged(fx, examples):
  for ensid, (chrom, tss, _, _) in GENES.items():
    raw = np.nan_to_num(fx.hic[ensid])  # TSS-centred: element i is tss - WINDOW/2 + i
    want = np.log10(1 + raw).astype(np.float32)
    start = tss - WINDOW // 2
    for i in (0, WINDOW // 2, WINDOW - 1):
      pos = start + i
      expect = want[i] if 0 <= pos < CHROMS[chrom] else 0.0
      assert examples[ensid]["signals"][i, 2] == pytest.approx(expect, rel=1e-6), (ensid, i)
  sig = examples["ENSG01"]["signals"][:, 2]
  assert (sig[:400] == 0).all() and (sig[400:] > 0).sum() > 500


def test_masks_placed_right(examples):
  for ensid, (chrom, tss, _, _) in GENES.items():
    s, e = tss - WINDOW // 2, tss + WINDOW // 2
    for name, rows in (("blacklist", BLACKLIST), ("includelist", INCLUDELIST)):
      want = expected_window(interval_mask(rows, chrom, CHROMS[chrom]), s, e, fill=False)
      got = examples[ensid][name]
      assert got.dtype == np.bool_
      np.testing.assert_array_equal(got, want, err_msg=f"{ensid} {name}")


def test_rna_feat_target_and_skipped_gene(fx, genes, examples, caplog):
  with caplog.at_level("WARNING"):
    splits = tables.load_genes(fx.layout)
  assert "skipped 1 gene(s)" in caplog.text and "not in gene table" in caplog.text
  assert [len(splits.splits[s]) for s in tables.SPLITS] == [3, 2, 1]
  assert splits.skipped["not_in_gene_table"] == 1
  for ensid, ex in examples.items():
    h3, dhs = fx.rpm[ensid]
    np.testing.assert_allclose(ex["rna_feat"][:8], fx.rna[ensid], rtol=1e-6)
    assert ex["rna_feat"][8] == pytest.approx(np.sqrt(h3 * dhs), rel=1e-6)
    assert ex["target"] == pytest.approx(np.log10(1 + fx.cage[ensid]), rel=1e-6)
    assert ex["chrom"] == GENES[ensid][0] and ex["tss"] == GENES[ensid][1]


def test_fold_choice_changes_splits(fx):
  fold1 = tables.read_fold_csv(fx.layout.fold_csv, 1)
  assert fold1["ENSG01"] == ("chr1", "test") and fold1["ENSG04"] == ("chr2", "train")


def test_real_fold_csv_and_mrna_table(data_dir):
  folds = tables.read_fold_csv(data_dir / "real_fold_split.csv", 11)
  assert len(folds) == 40
  assert folds["ENSG00000000003"] == ("chrX", "test")  # TSPAN6: chrX is a test chromosome
  assert folds["ENSG00000000419"] == ("chr20", "train")
  assert {s for _, s in folds.values()} <= set(tables.SPLITS)
  enformer = tables.read_fold_csv(data_dir / "real_fold_split.csv", "enformer")
  assert enformer["ENSG00000000003"] == ("chrX", "valid")
  feats = tables.read_rna_features(data_dir / "real_mrna_features.csv")
  assert len(feats) == 40
  np.testing.assert_allclose(
      feats["ENSG00000000003"],
      [-0.1007507556556228, -0.8118629705429312, -0.3388493498668778, 0.4668245005048347,
       0.625, 0.412, 0.368, 9.62], rtol=1e-6)
  assert all(v.shape == (8,) and v.dtype == np.float32 for v in feats.values())


def test_interval_mask_merges_overlaps():
  m = masks.IntervalMask({"c": np.array([[10, 20], [15, 30], [40, 41], [0, 2]])})
  np.testing.assert_array_equal(np.flatnonzero(m.window("c", 0, 50)),
                                [0, 1, *range(10, 30), 40])
  np.testing.assert_array_equal(m.window("c", -5, 5), [0] * 5 + [1, 1, 0, 0, 0])
  assert not m.window("other", 0, 10).any()


# ---------------------------------------------------------------- bad input


def test_missing_files_and_directories(tmp_path):
  f = fresh(tmp_path)
  f.layout.fasta.unlink()
  with pytest.raises(FileNotFoundError, match=r"hg38\.ml\.fa.*FASTA file not found"):
    WindowReader(f.layout, WINDOW)
  with pytest.raises(FileNotFoundError, match="chr_length.json"):
    WindowReader(GeneExpLayout(tmp_path / "nowhere"), WINDOW)
  f = write_layout(tmp_path / "root2")
  for p in f.layout.hic_dir.iterdir():
    p.unlink()
  f.layout.hic_dir.rmdir()
  with pytest.raises(FileNotFoundError, match="Hi-C directory not found"):
    WindowReader(f.layout, WINDOW)
  with pytest.raises(FileNotFoundError, match="fold CSV not found"):
    tables.read_fold_csv(tmp_path / "none.csv")


def test_fasta_without_a_chromosome_the_gene_table_names(tmp_path):
  f = fresh(tmp_path)
  lengths = dict(CHROMS, chr3=5000)
  f.layout.chr_length_json.write_text(json.dumps({"hg38": lengths}))
  table = f.layout.gene_table.read_text().replace("chr2\t", "chr3\t")
  f.layout.gene_table.write_text(table)
  f.layout.fold_csv.write_text(f.layout.fold_csv.read_text().replace(",2,", ",3,"))
  genes = tables.load_genes(f.layout).splits
  gene = next(g for s in genes.values() for g in s if g.chrom == "chr3")
  with WindowReader(f.layout, WINDOW) as reader:
    with pytest.raises(DataFormatError, match=r"hg38\.ml\.fa: no sequence named 'chr3'"):
      reader.check(gene)


def test_bigwig_lacking_the_chromosome(tmp_path):
  f = fresh(tmp_path)
  import pyBigWig  # pylint: disable=import-outside-toplevel
  bw = pyBigWig.open(str(f.layout.dnase_bigwig), "w")
  bw.addHeader([("chr1", CHROMS["chr1"])], maxZooms=0)
  bw.addEntries("chr1", 0, values=[1.0] * 100, span=1, step=1)
  bw.close()
  genes = tables.load_genes(f.layout).splits
  gene = next(g for s in genes.values() for g in s if g.chrom == "chr2")
  with WindowReader(f.layout, WINDOW) as reader:
    with pytest.raises(DataFormatError, match=r"ENCFF414OGC\.bigWig: bigWig has no chrom"):
      reader.read(gene)


def test_tss_outside_its_chromosome(tmp_path):
  f = fresh(tmp_path)
  f.layout.gene_table.write_text(
      f.layout.gene_table.read_text().replace("\t2800\t", "\t3000\t"))  # chr1 is 3000 long
  gene = next(g for s in tables.load_genes(f.layout).splits.values() for g in s
              if g.ensid == "ENSG02")
  with WindowReader(f.layout, WINDOW) as reader:
    with pytest.raises(DataFormatError, match=r"GeneList.txt: gene ENSG02 has TSS 3000 "
                                              r"outside chr1 \(length 3000"):
      reader.read(gene)


@pytest.mark.parametrize("which", ["fold_csv", "expression_csv", "gene_table"])
def test_malformed_and_duplicate_rows(tmp_path, which):
  f = fresh(tmp_path)
  path = getattr(f.layout, which)
  text = path.read_text()
  lines = text.splitlines(keepends=True)
  sep = "\t" if which == "gene_table" else ","
  path.write_text(text + lines[2])  # duplicate of the gene on row 3
  with pytest.raises(DataFormatError, match=rf"{path.name}: row {len(lines) + 1}: "
                                            "duplicate gene id"):
    tables.load_genes(f.layout)
  path.write_text(text + lines[2].rstrip("\n") + sep + "extra\n")
  with pytest.raises(DataFormatError, match=rf"{path.name}: row {len(lines) + 1} has "):
    tables.load_genes(f.layout)


def test_bad_values_name_row_and_column(tmp_path):
  f = fresh(tmp_path)
  text = f.layout.expression_csv.read_text().splitlines(keepends=True)
  fields = text[2].split(",")
  fields[3] = "abc"  # UTR5LEN_log10zscore
  f.layout.expression_csv.write_text("".join(text[:2] + [",".join(fields)] + text[3:]))
  with pytest.raises(DataFormatError, match=r"row 3, column 'UTR5LEN_log10zscore': 'abc'"):
    tables.load_genes(f.layout)
  f = write_layout(tmp_path / "r2")
  f.layout.fold_csv.write_text(f.layout.fold_csv.read_text().replace(
      ",valid,NAME04", ",holdout,NAME04", 1).replace("train,valid,train", "train,maybe,train"))
  with pytest.raises(DataFormatError, match=r"column 'fold_11': 'maybe'"):
    tables.load_genes(f.layout)
  f.layout.gene_table.write_text(f.layout.gene_table.read_text().replace("\t+\t", "\t?\t", 1))
  with pytest.raises(DataFormatError, match=r"GeneList.txt: row 2, column 'strand': '\?'"):
    tables.read_gene_table(f.layout.gene_table)
  f.layout.expression_csv.write_text("gene_id,chrom\nENSG01,1\n")
  with pytest.raises(DataFormatError, match="header lacks column"):
    tables.read_rna_features(f.layout.expression_csv)


@pytest.mark.parametrize("window", [999, 0, -2, 2.0])
def test_window_length_must_be_positive_even(window):
  with pytest.raises(ValueError, match="window length"):
    check_window_length(window)


def test_pickle_masks_need_allow_pickle(tmp_path):
  f = fresh(tmp_path)
  f.layout.blacklist_bed.unlink()
  per_bp = {c: interval_mask(BLACKLIST, c, n).astype(np.uint8) for c, n in CHROMS.items()}
  with f.layout.blacklist_pickle.open("wb") as fh:
    pickle.dump(per_bp, fh)
  with pytest.raises(PickleNotAllowedError, match=r"blacklist_dict_v1\.pkl.*--allow-pickle"):
    WindowReader(f.layout, WINDOW)
  with pytest.raises(PickleNotAllowedError, match="refusing to unpickle"):
    masks.read_pickle(f.layout.blacklist_pickle)
  gene = tables.load_genes(f.layout).splits["train"][2]  # ENSG03 on chr2
  with WindowReader(f.layout, WINDOW, allow_pickle=True) as reader:
    got = reader.read(gene)["blacklist"]
  want = expected_window(interval_mask(BLACKLIST, "chr2", CHROMS["chr2"]),
                         gene.tss - WINDOW // 2, gene.tss + WINDOW // 2, fill=False)
  np.testing.assert_array_equal(got, want)
  f.layout.blacklist_pickle.unlink()
  with pytest.raises(FileNotFoundError, match="mask not found"):
    WindowReader(f.layout, WINDOW)


def test_bad_bed_line(tmp_path):
  bed = tmp_path / "x.bed"
  bed.write_text("track name=x\nchr1\t5\t10\nchr1\tfive\t10\n")
  with pytest.raises(DataFormatError, match=r"x\.bed: line 3: start/end"):
    masks.read_interval_bed(bed)


def test_write_bigwig_helper_roundtrip(tmp_path):
  # Guards the fixture itself: what we write is what pyBigWig reads back.
  from data_pipeline.readers.bigwig import BigWigTrack  # pylint: disable=import-outside-toplevel
  vals = {c: np.arange(n, dtype=np.float32) for c, n in CHROMS.items()}
  write_bigwig(tmp_path / "t.bw", vals, {"chr1": 10, "chr2": 5})
  t = BigWigTrack(tmp_path / "t.bw")
  np.testing.assert_array_equal(t.window("chr2", -2, 8), [0, 0, 0, 1, 2, 3, 4, 0, 0, 0])


def test_tiny_synthetic_windows_equal_independent_reads(tmp_path_factory):
  """On `seq2exp synth --preset tiny`: every window equals pyfaidx / pyBigWig / h5py read
  directly, and the truth equals `read_truth`."""
  import h5py  # pylint: disable=import-outside-toplevel
  import pyBigWig  # pylint: disable=import-outside-toplevel
  import pyfaidx  # pylint: disable=import-outside-toplevel
  from conftest_data import SYNTH_WINDOW, tiny_synthetic  # pylint: disable=import-outside-toplevel
  from data_pipeline.truth import read_truth  # pylint: disable=import-outside-toplevel
  root, _ = tiny_synthetic(tmp_path_factory.getbasetemp())
  layout = GeneExpLayout(root, "K562")
  genes = [g for s in tables.load_genes(layout).splits.values() for g in s]
  lengths = io.read_chrom_lengths(layout.chr_length_json)
  fasta = pyfaidx.Fasta(str(layout.fasta))
  tracks = [pyBigWig.open(str(p)) for p in (layout.h3k27ac_bigwig, layout.dnase_bigwig)]
  half = SYNTH_WINDOW // 2
  causal_bases = 0
  with WindowReader(layout, SYNTH_WINDOW) as reader:
    for gene in genes:
      ex = reader.read(gene)
      s, e = gene.tss - half, gene.tss + half
      lo, hi = max(s, 0), min(e, lengths[gene.chrom])
      text = str(fasta[gene.chrom][lo:hi]).upper()
      want = np.full(SYNTH_WINDOW, 4, np.uint8)
      want[lo - s:hi - s] = [CODES.get(b, 4) for b in text]
      np.testing.assert_array_equal(ex["dna"], want)
      for col, bw in enumerate(tracks):
        v = np.zeros(SYNTH_WINDOW, np.float32)
        v[lo - s:hi - s] = np.nan_to_num(np.array(bw.values(gene.chrom, lo, hi)))
        np.testing.assert_allclose(ex["signals"][:, col], v, rtol=1e-6)
      with h5py.File(layout.hic_file(gene.chrom)) as f:
        raw = f[f"{gene.chrom}_{gene.tss}"][:]
      assert raw.shape == (hi - lo,)  # clipped to the chromosome, as published
      hic = np.zeros(SYNTH_WINDOW, np.float32)
      hic[lo - s:hi - s] = np.log10(1 + raw)
      np.testing.assert_allclose(ex["signals"][:, 2], hic, rtol=1e-6)
      np.testing.assert_array_equal(ex["truth"], read_truth(layout, gene.chrom, s, e))
      causal_bases += int((ex["truth"] == 1).sum())
  assert causal_bases > 0 and len(genes) == 20
