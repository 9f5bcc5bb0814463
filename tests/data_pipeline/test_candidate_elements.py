"""Candidate elements (readers/elements.py): a hand-computed gene (order, the 1 kb / 100 kb
rule, the 60 cap, cut and centred sequences, contact, activity), ABC's EnhancerList.txt and
its errors, the DNase-peak source, and a data set built without elements still loads."""

from __future__ import annotations

import csv
import math
import pathlib

import h5py
import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from conftest_data import CHROMS, PEAK_BLOCKS, WINDOW, tiny_synthetic, write_layout
from data_pipeline import tfds_builder
from data_pipeline.errors import DataFormatError, MissingInputError
from data_pipeline.layout import GeneExpLayout
from data_pipeline.loader import ShardedLoader
from data_pipeline.readers import elements
from data_pipeline.readers.bigwig import BigWigTrack
from data_pipeline.readers.genome import Genome
from data_pipeline.readers.hic import HicReader
from data_pipeline.readers.masks import IntervalMask
from data_pipeline.readers.tables import Gene, load_genes
from seq2exp_jax.cli import main

LENGTH = 260_000
T = 120_000  # the gene's TSS; its Hi-C vector covers [T - 100 kb, T + 100 kb)
CODE = {ord(b): i for i, b in enumerate("ACGT")}
# (start, end, activity); the comment gives |centre - T|
NEAR = [
    (T + 750, T + 1250, 9.0),  # 1000: not > 1 kb, left out
    (T + 751, T + 1250, 1.5),  # 1000.5, 499 bp: placed from 1000 - 249
    (T - 11_500, T - 8_499, 2.5),  # 9999.5, 3001 bp: cut to [c - 1000, c + 1000), c = T - 10000
    (T + 99_900, T + 100_100, 3.5),  # 100,000: kept (<=), beyond the Hi-C vector: contact 0
    (T + 99_901, T + 100_101, 9.0),  # 100,001: left out
    (T + 4_900, T + 5_100, 4.5),  # 5000, tied with the next: the lower start first
    (T - 5_100, T - 4_900, 5.5),
]


def gene(tss: int) -> Gene:
  return Gene(ensid="ENSG1", chrom="chr1", tss=tss, strand="+", rna_feat=np.zeros(9),
              target=0.0)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
  """(FASTA text, Hi-C vector, Genome, HicReader) of one 260 kb chromosome."""
  root = tmp_path_factory.mktemp("elements")
  rng = np.random.default_rng(0)
  seq = np.frombuffer(b"ACGTacgtN", np.uint8)[rng.integers(0, 9, LENGTH)].tobytes()
  fasta = root / "g.fa"
  fasta.write_bytes(b">chr1\n" + b"\n".join(seq[i:i + 60] for i in range(0, LENGTH, 60))
                    + b"\n")
  vector = (np.arange(200_000) % 997).astype(np.float32)
  with h5py.File(root / "hic_feat_chr1.h5", "w") as f:
    f.create_dataset(f"chr1_{T}", data=vector)
  return seq, vector, Genome(fasta), HicReader(root)


def codes(seq: bytes, start: int, end: int) -> np.ndarray:
  """Independent of the reader: A C G T (any case) 0..3, anything else and off-chromosome 4."""
  return np.array([CODE.get(seq[i] & 0xDF, 4) if 0 <= i < len(seq) else 4
                   for i in range(start, end)], np.uint8)


def read(files, rows, tss=T) -> dict[str, np.ndarray]:
  _, _, genome, hic = files
  start, end, activity = (np.array(c) for c in zip(*rows))
  cands = elements.CandidateList("test", pathlib.Path("x"), {"chr1": elements.Candidates(
      start.astype(np.int64), end.astype(np.int64), activity.astype(np.float64))})
  return elements.ElementReader(cands, genome, hic, {"chr1": LENGTH}).read(gene(tss))


def test_hand_computed_gene(files):
  seq, vector, _, _ = files
  got = read(files, NEAR)
  # Kept, nearest first: rows 1, 6, 5 (tie at 5 kb: the lower start first), 2, 3.
  want_pos = [(T - 1000, T + 1000), (T + 751, T + 1250), (T - 5_100, T - 4_900),
              (T + 4_900, T + 5_100), (T - 11_000, T - 9_000), (T + 99_900, T + 100_100)]
  np.testing.assert_array_equal(got["element_valid"], [True] * 6 + [False] * 55)
  np.testing.assert_array_equal(got["element_pos"][:6], want_pos)
  assert (got["element_pos"][6:] == -1).all()
  np.testing.assert_allclose(got["element_feat"][:6, 0], [0, 1.0005, 5.0, 5.0, 9.9995, 100.0],
                             rtol=1e-6)
  centres = [T + 1000, T - 5000, T + 5000, T - 10_000]
  contact = [math.log10(1 + vector[c - (T - 100_000)]) for c in centres] + [0.0]
  np.testing.assert_allclose(got["element_feat"][1:6, 1], contact, rtol=1e-6)
  np.testing.assert_allclose(got["element_feat"][1:6, 2], [1.5, 5.5, 4.5, 2.5, 3.5])
  assert not got["element_feat"][0].any() and not got["element_feat"][6:].any()
  dna = got["element_dna"]
  np.testing.assert_array_equal(dna[0], codes(seq, T - 1000, T + 1000))
  short = np.full(2000, 4, np.uint8)
  short[751:1250] = codes(seq, T + 751, T + 1250)  # 499 bp from 1000 - 499 // 2
  np.testing.assert_array_equal(dna[1], short)
  np.testing.assert_array_equal(dna[2][900:1100], codes(seq, T - 5_100, T - 4_900))
  assert (dna[2][:900] == 4).all() and (dna[2][1100:] == 4).all()
  np.testing.assert_array_equal(dna[4], codes(seq, T - 11_000, T - 9_000))  # the cut one
  assert (dna[6:] == 4).all()


def test_at_most_sixty_nearest(files):
  rng = np.random.default_rng(1)
  far = [(T - d - 100, T - d + 100, float(d)) for d in 20_000 + 1_000 * rng.permutation(70)]
  got = read(files, NEAR + far)
  assert got["element_valid"].all()  # 5 near + 70 far candidates fill all 60 slots
  distance = got["element_feat"][1:, 0]
  np.testing.assert_allclose(distance[:4], [1.0005, 5.0, 5.0, 9.9995], rtol=1e-6)
  np.testing.assert_allclose(distance[4:], 20 + np.arange(56))  # the 56 nearest far ones
  np.testing.assert_allclose(got["element_feat"][5:, 2], 20_000 + 1000 * np.arange(56))


def test_promoter_beyond_the_chromosome_start_is_n(files):
  seq = files[0]
  got = read(files, NEAR, tss=500)  # every candidate is > 100 kb away
  np.testing.assert_array_equal(got["element_valid"], [True] + [False] * 60)
  assert (got["element_dna"][0][:500] == 4).all()
  np.testing.assert_array_equal(got["element_dna"][0][500:], codes(seq, 0, 1500))


def write_list(path: pathlib.Path, header: str, rows: list[str]) -> pathlib.Path:
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text("\n".join([header] + rows) + "\n")
  return path


def test_enhancer_list_activity_base_or_rpm(tmp_path):
  path = write_list(tmp_path / "a.txt", "chr\tstart\tend\tname\tclass\tactivity_base\tx",
                    ["chr1\t100\t600\tgenic|chr1:100-600\tgenic\t2.5\t.",
                     "chr2\t10\t20\tp\tpromoter\t0\t.", "chr1\t700\t900\ti\tintergenic\t1e-3\t."])
  got = elements.read_enhancer_list(path)
  assert got.source == elements.SOURCE_ABC and sorted(got.chroms) == ["chr1", "chr2"]
  np.testing.assert_array_equal(got.chroms["chr1"].start, [100, 700])
  np.testing.assert_array_equal(got.chroms["chr1"].end, [600, 900])
  np.testing.assert_allclose(got.chroms["chr1"].activity, [2.5, 1e-3])
  path = write_list(tmp_path / "b.txt", "chr\tstart\tend\tname\tclass\tH3K27ac.RPM\tDHS.RPM",
                    ["chr1\t100\t600\tn\tgenic\t4\t9"])
  assert elements.read_enhancer_list(path).chroms["chr1"].activity[0] == pytest.approx(6.0)


@pytest.mark.parametrize("header,row,message", [
    ("chr\tstart\tend\tname\tactivity_base", "chr1\t1\t5\tn\t1",
     r"b.txt: no column 'class' in the header line; expected ABC's EnhancerList columns"),
    ("chr\tstart\tend\tname\tclass\tDHS.RPM", "chr1\t1\t5\tn\tgenic\t1",
     r"b.txt: no column 'activity_base' \(nor both 'H3K27ac.RPM' and 'DHS.RPM'"),
    ("chr\tstart\tend\tname\tclass\tactivity_base", "chr1\tabc\t5\tn\tgenic\t1",
     r"b.txt: line 3: start 'abc': expected a non-negative integer"),
    ("chr\tstart\tend\tname\tclass\tactivity_base", "chr1\t1\t5\tn\tgenic\tnan",
     r"b.txt: line 3: activity_base 'nan': expected a finite number >= 0"),
    ("chr\tstart\tend\tname\tclass\tactivity_base", "chr1\t9\t5\tn\tgenic\t1",
     r"b.txt: line 3: element \[9, 5\): expected start < end"),
    ("chr\tstart\tend\tname\tclass\tactivity_base", "chr1\t1\t5",
     r"b.txt: line 3 has 3 fields, the header 6"),
])
def test_enhancer_list_errors_name_file_line_and_field(tmp_path, header, row, message):
  good = {"chr": "chr1", "start": "1", "end": "2"}
  line_2 = "\t".join(good.get(c, "1") for c in header.split("\t"))
  path = write_list(tmp_path / "b.txt", header, [line_2, row])
  with pytest.raises(DataFormatError, match=message):
    elements.read_enhancer_list(path)


def test_build_data_refuses_a_bad_enhancer_list_in_one_line(tmp_path, capsys):
  fx = write_layout(tmp_path / "root")
  write_list(fx.layout.enhancer_list, "chr\tstart\tend\tname\tclass", ["chr1\t1\t5\tn\tgenic"])
  rc = main(["build-data", "--data-root", str(fx.root), "--window", str(WINDOW), "--out",
             str(tmp_path / "out")])
  err = capsys.readouterr().err.strip().splitlines()
  assert rc == 2 and len(err) == 1, err
  assert err[0].startswith(f"seq2exp build-data: {fx.layout.enhancer_list}: no column "
                           "'activity_base'")


def test_peak_candidates_and_the_source_order(tmp_path):
  fx = write_layout(tmp_path / "root")
  peaks = IntervalMask({c: np.array([(s, e) for cc, s, e in PEAK_BLOCKS if cc == c])
                        for c in CHROMS}, "peaks.bed")
  h3, dnase = BigWigTrack(fx.layout.h3k27ac_bigwig), BigWigTrack(fx.layout.dnase_bigwig)
  got = elements.load_candidates(fx.layout, peaks, h3, dnase)
  assert got.source == elements.SOURCE_PEAKS and got.path.name == "peaks.bed"
  for c in CHROMS:
    blocks = [(s, e) for cc, s, e in PEAK_BLOCKS if cc == c]
    want = [math.sqrt(fx.h3k27ac[c][s:e].mean() * fx.dnase[c][s:e].mean()) for s, e in blocks]
    np.testing.assert_allclose(got.chroms[c].activity, want, rtol=1e-5)
    np.testing.assert_array_equal(got.chroms[c].start, [s for s, _ in blocks])
  with pytest.raises(MissingInputError, match="EnhancerList.txt: not found, and no DNase"):
    elements.load_candidates(fx.layout, None, h3, dnase)
  write_list(fx.layout.enhancer_list, "chr\tstart\tend\tname\tclass\tactivity_base", [])
  assert elements.load_candidates(fx.layout, peaks, h3, dnase).source == elements.SOURCE_ABC


def test_a_data_set_without_elements_still_loads(tmp_path):
  fx = write_layout(tmp_path / "root")
  bed = tmp_path / "peaks.bed"
  bed.write_text("".join(f"{c}\t{s}\t{e}\n" for c, s, e in PEAK_BLOCKS))
  old = tfds_builder.make_config("K562", WINDOW, with_elements=False)  # as built before
  ds = tfds_builder.build_atomically(fx.root, tmp_path / "out", old, bed)
  assert "element_dna" not in (ds / "features.json").read_text()
  mesh = jax.make_mesh((1,), ("data",), devices=jax.devices()[:1],
                       axis_types=(jax.sharding.AxisType.Auto,))
  batch = next(iter(ShardedLoader(ds, "train", 2, mesh=mesh, shuffle=False, num_epochs=1)))
  assert batch.dna.shape == (2, WINDOW, 4)
  assert all(getattr(batch, k) is None for k in ("element_dna", "element_feat",
                                                 "element_valid", "element_pos"))
  by_name = tfds.data_source(f"geneexp/k562_{WINDOW}", data_dir=str(tmp_path / "out"),
                             split="valid")
  assert "element_dna" not in by_name[0] and by_name[0]["dna"].shape == (WINDOW,)


def test_synthetic_enhancer_list_lists_every_element_alike(tmp_path_factory):
  root = tiny_synthetic(tmp_path_factory.getbasetemp())[0]
  layout = GeneExpLayout(root, "K562")
  with layout.enhancer_list.open() as f:
    rows = list(csv.DictReader(f, delimiter="\t"))
  assert {r["class"] for r in rows} <= {"promoter", "genic", "intergenic"}
  listed = {(r["chr"], int(r["start"]), int(r["end"])): float(r["activity_base"]) for r in rows}
  with (layout.truth_dir / "elements.tsv").open() as f:
    truth = list(csv.DictReader(f, delimiter="\t"))
  assert {r["class"] for r in truth} == {"causal", "insulated", "dead", "split"}
  measured = [listed[r["chrom"], int(r["start"]), int(r["end"])] for r in truth]  # all there
  planted = [math.sqrt(float(r["dhs"]) * float(r["h3k27ac"])) for r in truth]
  assert np.corrcoef(np.log(measured), np.log(planted))[0, 1] > 0.9  # observed, noisy reads
  genes = sum(len(g) for g in load_genes(layout, 11).splits.values())
  assert len(rows) == len(truth) + genes  # and each gene's promoter
