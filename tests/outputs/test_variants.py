"""Variant effects (seq2exp_jax/outputs/variants.py) without a model: the alternative
windows of SNVs and indels written out by hand, VCF reading and writing with pysam, and
every bad record named by its line."""

from __future__ import annotations

import numpy as np
import pysam
import pytest

from data_pipeline.errors import DataFormatError, MissingInputError
from seq2exp_jax.outputs import variants as var

SIZES = {"chr1": 5000, "chr2": 800}
REF_CODES = np.array([0, 1, 2, 3, 0, 1, 2, 3, 0, 1], np.uint8)  # ACGTACGTAC, TSS at 5


def _example() -> dict[str, np.ndarray]:
  return {"dna": REF_CODES.copy(),
          "signals": np.stack([np.arange(10.0)] * 3, axis=1).astype(np.float32) + 1,
          "blacklist": np.arange(10) == 9, "ensid": np.str_("G"), "tss": np.int64(105)}


@pytest.mark.parametrize("p, ref, alt, dna, sig", [
    # SNV: only the base changes.
    (2, "G", "T", [0, 1, 3, 3, 0, 1, 2, 3, 0, 1], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
    # Upstream of the TSS, everything from REF's end keeps its index; an insertion pushes
    # the far-left bases out, a deletion leaves N (signals 0) at the far left.
    (2, "G", "GAA", [2, 0, 0, 3, 0, 1, 2, 3, 0, 1], [3, 3, 3, 4, 5, 6, 7, 8, 9, 10]),
    (1, "CGT", "C", [4, 4, 0, 1, 0, 1, 2, 3, 0, 1], [0, 0, 1, 2, 5, 6, 7, 8, 9, 10]),
    (3, "TA", "CC", [0, 1, 2, 1, 1, 1, 2, 3, 0, 1], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
    # At or after the TSS, everything before the variant keeps its index.
    (6, "G", "GTT", [0, 1, 2, 3, 0, 1, 2, 3, 3, 3], [1, 2, 3, 4, 5, 6, 7, 7, 7, 8]),
    (6, "GT", "G", [0, 1, 2, 3, 0, 1, 2, 0, 1, 4], [1, 2, 3, 4, 5, 6, 7, 9, 10, 0]),
    (8, "AC", "AGGGGG", [0, 1, 2, 3, 0, 1, 2, 3, 0, 2], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
])
def test_alternative_windows_keep_the_tss_in_place(p, ref, alt, dna, sig):
  example = _example()
  assert "".join("ACGTN"[c] for c in example["dna"][p:p + len(ref)]) == ref
  out = var.alt_example(example, p, len(ref), alt)
  np.testing.assert_array_equal(out["dna"], dna)
  np.testing.assert_array_equal(out["signals"][:, 0], sig)
  np.testing.assert_array_equal(out["signals"][:, 2], sig)
  assert out["dna"][5] == REF_CODES[5]  # the TSS base stays at L // 2
  assert out["ensid"] == "G" and out["tss"] == 105  # gene fields untouched
  np.testing.assert_array_equal(example["dna"], REF_CODES)  # the reference is not changed
  with pytest.raises(ValueError):
    var.allele_source(10, 9, 2, 1)  # REF past the window


def test_window_lookup_needs_the_whole_ref():
  vs = [var.Variant(3, "chr1", 101, ".", "A", "G"), var.Variant(4, "chr1", 200, ".", "AC", "A"),
        var.Variant(5, "chr2", 150, ".", "A", "G")]
  index = var.VariantIndex(vs)
  assert index.within("chr1", 100, 200) == [vs[0]]  # vs[1]: bases 199-200 (0-based)
  assert index.within("chr1", 100, 201) == vs[:2]
  assert index.within("chr3", 0, 1000) == []


def test_written_vcf_reads_back_with_pysam_and_lines(tmp_path):
  vs = [var.Variant(0, "chr2", 20, "rs2", "A", "T"), var.Variant(0, "chr1", 10, ".", "AC", "A"),
        var.Variant(0, "chr1", 10, ".", "AC", "ACGG")]
  path = tmp_path / "v.vcf"
  var.write_vcf(path, vs, SIZES)
  with pysam.VariantFile(str(path)) as f:
    assert list(f.header.contigs) == ["chr1", "chr2"]
    records = [(r.chrom, r.pos, r.id, r.ref, r.alts) for r in f]
  assert records == [("chr1", 10, None, "AC", ("A",)), ("chr1", 10, None, "AC", ("ACGG",)),
                     ("chr2", 20, "rs2", "A", ("T",))]
  first = sum(line.startswith("#") for line in path.read_text().splitlines()) + 1
  pysam.tabix_compress(str(path), str(tmp_path / "v.vcf.gz"))
  for p in (path, tmp_path / "v.vcf.gz"):
    got, skipped = var.read_vcf(p, SIZES)
    assert skipped == 0
    assert [(v.line, v.chrom, v.pos, v.id, v.ref, v.alt) for v in got] == [
        (first, "chr1", 10, ".", "AC", "A"), (first + 1, "chr1", 10, ".", "AC", "ACGG"),
        (first + 2, "chr2", 20, "rs2", "A", "T")]


HEADER = ("##fileformat=VCFv4.2\n##contig=<ID=chr1,length=5000>\n"
          "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
GOOD = "chr1\t10\t.\tA\tG\t.\t.\t.\n"


@pytest.mark.parametrize("bad, message", [
    ("chr1\tabc\t.\tA\tG\t.\t.\t.\n", "line 5: not a valid VCF record"),
    ("chr1\t40\t.\tA\n", "line 5: not a valid VCF record"),
    ("chr1 40 . A T . . .\n", "line 5: not a valid VCF record"),
    ("chrZ\t30\t.\tA\tT\t.\t.\t.\n", "line 5: chromosome 'chrZ' is not in the data set"),
    ("1\t30\t.\tA\tT\t.\t.\t.\n", "line 5: chromosome '1' is not in the data set (it has "
     "'chr1')"),
    ("chr2\t800\t.\tAC\tA\t.\t.\t.\n", "line 5: chr2:800 REF AC: outside the chromosome"),
    ("chr1\t30\t.\tA\t<DEL>\t.\t.\t.\n", "line 5: ALT '<DEL>': only sequence alleles"),
    ("chr1\t30\t.\tR\tA\t.\t.\t.\n", "line 5: REF 'R': expected bases A, C, G, T, N"),
])
def test_bad_records_are_named_by_file_and_line(tmp_path, bad, message):
  path = tmp_path / "bad.vcf"
  path.write_text(HEADER + GOOD + bad + GOOD)
  with pytest.raises(DataFormatError) as e:
    var.read_vcf(path, SIZES)
  assert str(e.value).startswith(f"{path}: {message}"), str(e.value)


def test_other_vcf_inputs(tmp_path):
  path = tmp_path / "v.vcf"
  path.write_text(HEADER + GOOD + "chr1\t20\t.\tA\t.\t.\t.\t.\n" + GOOD.replace("G\t", "G,T\t"))
  got, skipped = var.read_vcf(path, SIZES)
  assert skipped == 1 and [(v.line, v.alt) for v in got] == [(4, "G"), (6, "G"), (6, "T")]
  (tmp_path / "no_header.vcf").write_text(GOOD)
  with pytest.raises(DataFormatError, match="no_header.vcf: not a VCF file"):
    var.read_vcf(tmp_path / "no_header.vcf", SIZES)
  with pytest.raises(MissingInputError, match="absent.vcf: no such VCF file"):
    var.read_vcf(tmp_path / "absent.vcf", SIZES)
  with pytest.raises(DataFormatError, match=r"v.vcf: line 4: REF AC at chr1:10 does not "
                     r"match the data set's sequence there, GC \(window of G\)"):
    var.check_ref(path, var.Variant(4, "chr1", 10, ".", "AC", "A"), np.array([2, 1]), "G")
  var.check_ref(path, var.Variant(4, "chr1", 10, ".", "NC", "A"), np.array([2, 1]), "G")
