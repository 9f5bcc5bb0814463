"""TFDS builder, MACS3 peaks and `seq2exp build-data`: every feature round-trips, the data
set reads back without TensorFlow, and a failed rebuild never leaves a half-written set."""

from __future__ import annotations

import pathlib
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from conftest_data import (PEAK_BLOCKS, SYNTH_WINDOW, WINDOW, tiny_synthetic, write_layout)
from data_pipeline import peaks, tfds_builder
from data_pipeline.batch import ELEMENT_SLOTS, ELEMENT_WIDTH, PER_ELEMENT
from data_pipeline.commands.build_data import PEAKS_FILE
from data_pipeline.layout import GeneExpLayout
from data_pipeline.readers.tables import load_genes
from data_pipeline.readers.window import WindowReader
from seq2exp_jax.cli import main

PER_BASE = ("dna", "signals", "blacklist", "includelist", "peaks", "truth")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  return tiny_synthetic(tmp_path_factory.getbasetemp())


def test_every_feature_round_trips(tiny):
  root, ds_dir = tiny
  layout = GeneExpLayout(root, "K562")
  genes = load_genes(layout, 11).splits
  peak_mask = peaks.load_peaks(ds_dir / PEAKS_FILE)
  source = tfds.builder_from_directory(str(ds_dir)).as_data_source()
  assert {s: len(source[s]) for s in source} == {s: len(g) for s, g in genes.items()}
  with WindowReader(layout, SYNTH_WINDOW, peaks=peak_mask, elements=True) as reader:
    for split, split_genes in genes.items():
      stored = {ex["ensid"].decode(): ex for ex in source[split]}
      assert list(stored) == [g.ensid for g in split_genes]  # fold CSV order
      for gene in split_genes:
        want, got = reader.read(gene), stored[gene.ensid]
        assert sorted(got) == sorted(want)
        for key in PER_BASE + PER_ELEMENT + ("rna_feat",):
          assert got[key].dtype == want[key].dtype, key
          np.testing.assert_array_equal(got[key], want[key], err_msg=f"{gene.ensid} {key}")
        assert got["target"] == pytest.approx(float(want["target"]), rel=1e-7)
        assert got["tss"] == gene.tss and got["chrom"].decode() == gene.chrom
        assert got["dna"].shape == (SYNTH_WINDOW,) and got["signals"].shape == (SYNTH_WINDOW, 3)
        assert got["element_dna"].shape == (ELEMENT_SLOTS, ELEMENT_WIDTH)
  # The synthetic elements come from its ABC EnhancerList.txt, recorded in the metadata.
  metadata = tfds.builder_from_directory(str(ds_dir)).info.metadata
  assert metadata["elements_source"] == "abc_enhancer_list"
  assert metadata["elements_file"] == str(layout.enhancer_list.relative_to(root))
  # The synthetic truth is really there: some causal bases, and peaks somewhere.
  train = [source["train"][i] for i in range(len(source["train"]))]
  assert any((ex["truth"] == 1).any() for ex in train)
  assert any(ex["peaks"].any() for ex in train)


def test_readable_by_name_and_without_tensorflow(tiny):
  _, ds_dir = tiny
  data_dir = ds_dir.parents[2]
  ds = tfds.data_source(f"geneexp/k562_{SYNTH_WINDOW}", data_dir=str(data_dir), split="valid")
  assert len(ds) == 1 and ds[0]["truth"].shape == (SYNTH_WINDOW,)
  assert "tensorflow" not in sys.modules


def test_config_names():
  assert tfds_builder.make_config("K562", 200_000).name == "k562_200000"
  assert tfds_builder.make_config("GM12878", 1000, fold=3).name == "gm12878_1000_fold3"
  cfg = tfds_builder.config_from_name("k562_1000_foldenformer", None)
  assert (cfg.cell_type, cfg.window, cfg.fold) == ("K562", 1000, "enformer")
  with pytest.raises(ValueError, match="divisible by 2"):
    tfds_builder.make_config("K562", 1001)


def test_macs3_peaks_find_the_dnase_blocks(tmp_path):
  fx = write_layout(tmp_path / "root")
  bed = tmp_path / "peaks.narrowPeak"
  cutoff = peaks.call_dnase_peaks(fx.layout.dnase_bigwig, ["chr1", "chr2"], bed)
  called = [tuple(line.split("\t")[:3]) for line in bed.read_text().splitlines()]
  assert called == [(c, str(s), str(e)) for c, s, e in PEAK_BLOCKS]
  assert 0.2 < cutoff < 20  # above the 0..0.2 background, below the +20 blocks
  # A cutoff above every value calls nothing.
  peaks.call_dnase_peaks(fx.layout.dnase_bigwig, ["chr1"], bed, peaks.PeakParams(cutoff=1e6))
  assert bed.read_text().strip() == ""


def _cli_build(root: pathlib.Path, out: pathlib.Path, *extra: str) -> int:
  return main(["build-data", "--data-root", str(root), "--window", str(WINDOW), "--out",
               str(out), *extra])


def test_failed_rebuild_keeps_the_old_data_set(tmp_path, capsys, monkeypatch):
  fx = write_layout(tmp_path / "root")
  out = tmp_path / "tfds"
  assert _cli_build(fx.root, out) == 0
  ds_dir = out / "geneexp" / f"k562_{WINDOW}" / "1.0.0"
  before = {p.name: p.read_bytes() for p in ds_dir.iterdir()}
  assert (ds_dir / PEAKS_FILE).is_file() and len(before) == 7
  from array_record.python import array_record_module  # pylint: disable=import-outside-toplevel
  for path in ds_dir.glob("*.array_record-*"):  # the default: rewritten uncompressed
    assert ",uncompressed" in array_record_module.ArrayRecordReader(
        str(path)).writer_options_string()
  # A read failing half-way through writing the examples (e.g. a disk error).
  calls = []

  def failing_read(self, gene):
    calls.append(gene.ensid)
    if len(calls) == 4:
      raise OSError("simulated read failure")
    return real_read(self, gene)

  real_read = WindowReader.read
  monkeypatch.setattr(WindowReader, "read", failing_read)
  with pytest.raises(OSError, match="simulated read failure"):
    _cli_build(fx.root, out)
  monkeypatch.undo()
  assert len(calls) == 4
  after = {p.name: p.read_bytes() for p in ds_dir.iterdir()}
  assert after == before  # the old data set is untouched
  # Only the data set: the path (a symlink) and the build it names; no temporaries.
  assert sorted(p.name for p in ds_dir.parent.iterdir()) == sorted(["1.0.0", ds_dir.resolve().name])
  assert [p.name for p in out.iterdir()] == ["geneexp"]
  # Bad input caught before writing gives one line and exit status 2.
  assert _cli_build(fx.root, out, "--window", "1001") == 2
  assert "must be divisible by 2" in capsys.readouterr().err
  import h5py  # pylint: disable=import-outside-toplevel
  with h5py.File(fx.layout.hic_file("chr2"), "a") as f:
    f.move("chr2_600", "chr2_601")
  assert _cli_build(fx.root, out) == 2
  assert "hic_feat_chr2.h5: no dataset 'chr2_600'" in capsys.readouterr().err
  with h5py.File(fx.layout.hic_file("chr2"), "a") as f:
    f.move("chr2_601", "chr2_600")
  assert {p.name: p.read_bytes() for p in ds_dir.iterdir()} == before
  # A successful rebuild replaces the data set whole (here: a different peak cutoff, and
  # compressed records).
  assert _cli_build(fx.root, out, "--peak-cutoff", "1e6", "--compression", "zstd") == 0
  assert (ds_dir / PEAKS_FILE).read_text() == ""
  ds = tfds.builder_from_directory(str(ds_dir)).as_data_source()
  assert not any(ex["peaks"].any() for ex in ds["train"])
  assert sorted(ex["ensid"] for ex in ds["train"]) == [b"ENSG01", b"ENSG02", b"ENSG03"]
  from array_record.python import array_record_module  # pylint: disable=import-outside-toplevel
  for path in ds_dir.glob("*.array_record-*"):
    assert "zstd:3" in array_record_module.ArrayRecordReader(str(path)).writer_options_string()
  # The previous build is gone once the new one is in place.
  assert sorted(p.name for p in ds_dir.parent.iterdir()) == sorted(["1.0.0", ds_dir.resolve().name])


def test_cli_refuses_pickle_without_flag(tmp_path, capsys):
  fx = write_layout(tmp_path / "root")
  import pickle  # pylint: disable=import-outside-toplevel
  fx.layout.includelist_bed.unlink()
  with fx.layout.includelist_pickle.open("wb") as f:
    pickle.dump({"chr1": np.ones(3000, np.uint8)}, f)
  out = tmp_path / "tfds"
  assert _cli_build(fx.root, out) == 2
  assert "--allow-pickle" in capsys.readouterr().err
  assert not (out / "geneexp" / f"k562_{WINDOW}" / "1.0.0").exists()
  assert _cli_build(fx.root, out, "--allow-pickle") == 0
  ds = tfds.builder_from_directory(str(out / "geneexp" / f"k562_{WINDOW}" / "1.0.0"))
  ex = {e["ensid"].decode(): e for e in ds.as_data_source()["train"]}
  assert ex["ENSG01"]["includelist"][400:].all() and not ex["ENSG01"]["includelist"][:400].any()
  assert not ex["ENSG03"]["includelist"].any()  # chr2 absent from the pickle


def test_cli_missing_data_root(tmp_path, capsys):
  assert _cli_build(tmp_path / "nope", tmp_path / "out") == 2
  assert "data root directory not found" in capsys.readouterr().err
