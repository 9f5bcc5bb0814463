"""Motif files (data_pipeline/readers/motifs.py): the shipped JASPAR subset read whole, the
same matrices written as MEME read back equal, and every kind of bad file named by line."""

from __future__ import annotations

import re

import numpy as np
import pytest

from data_pipeline.errors import DataFormatError, MissingInputError
from data_pipeline.readers import motifs

# The first matrix of the shipped file, as JASPAR 2024 gives it (MA0493.3 KLF1).
KLF1_COUNTS = np.array([[1, 1, 998, 1], [1, 1, 998, 1], [1, 1, 998, 1], [125, 529, 1, 346],
                        [1, 1, 998, 1], [1, 1, 675, 324], [82, 1, 896, 21],
                        [1, 1, 998, 1]], float)


def test_shipped_jaspar_file_reads_every_motif():
  got = motifs.read_motif_file()
  assert [(m.motif_id, m.name, m.width) for m in got] == [
      ("MA0035.4", "GATA1", 11), ("MA0493.3", "KLF1", 8), ("MA0114.5", "HNF4A", 9),
      ("MA0047.4", "FOXA2", 8)]
  klf1 = got[1]
  np.testing.assert_array_equal(klf1.counts, KLF1_COUNTS)
  np.testing.assert_allclose(klf1.frequencies()[0], [1 / 1001, 1 / 1001, 998 / 1001, 1 / 1001])
  np.testing.assert_allclose(klf1.frequencies()[6], [0.082, 0.001, 0.896, 0.021])
  for m in got:
    assert m.counts.shape == (m.width, 4)
    np.testing.assert_allclose(m.frequencies().sum(1), 1.0)


def _as_meme(matrices, nsites=None) -> str:
  out = ["MEME version 5", "", "ALPHABET= ACGT", "", "strands: + -", "",
         "Background letter frequencies", "A 0.3 C 0.2 G 0.2 T 0.3", ""]
  for m in matrices:
    n = m.counts.sum(1)[0] if nsites is None else nsites
    out += [f"MOTIF {m.motif_id} {m.name}",
            f"letter-probability matrix: alength= 4 w= {m.width} nsites= {n:g} E= 0"]
    out += [" ".join(f"{v:.17g}" for v in row) for row in m.frequencies()]
    out += ["", "log-odds matrix: alength= 4 w= 1", "1 2 3 4", "URL http://example", ""]
  return "\n".join(out)


def test_meme_and_bracketless_jaspar_give_the_same_matrices(tmp_path):
  shipped = motifs.read_motif_file()
  path = tmp_path / "all.meme"
  path.write_text(_as_meme(shipped))
  for a, b in zip(motifs.read_motif_file(path), shipped, strict=True):
    assert (a.motif_id, a.name) == (b.motif_id, b.name)
    np.testing.assert_allclose(a.frequencies(), b.frequencies(), rtol=1e-12)
  path.write_text(re.sub(r" nsites= \S+", "", _as_meme(shipped[:1])))  # MEME's default
  assert motifs.read_motif_file(path)[0].counts.sum(1)[0] == pytest.approx(20.0)
  pfm = tmp_path / "klf1.pfm"  # JASPAR .pfm: no letters, no brackets, A C G T order
  pfm.write_text(">MA0493.3 KLF1\n" + "\n".join(" ".join(f"{v:g}" for v in row)
                                               for row in KLF1_COUNTS.T) + "\n")
  np.testing.assert_array_equal(motifs.read_motif_file(pfm)[0].counts, KLF1_COUNTS)


GOOD = ">M1 ONE\nA [ 1 2 ]\nC [ 3 4 ]\nG [ 5 6 ]\nT [ 7 8 ]\n"


@pytest.mark.parametrize("text, where, what", [
    (GOOD + ">M2 TWO\nA [ 1 2 ]\nC [ 3 x ]\nG [ 5 6 ]\nT [ 7 8 ]\n", "line 8",
     "expected numbers"),
    (GOOD + ">M2 TWO\nA [ 1 2 ]\nC [ 3 ]\nG [ 5 6 ]\nT [ 7 8 ]\n", "line 6",
     "rows of different lengths"),
    (GOOD + ">M2 TWO\nA [ 1 2 ]\nC [ 3 4 ]\n", "line 6", "expected four rows"),
    (GOOD + ">M2 TWO\nA [ 1 2 ]\nA [ 3 4 ]\nG [ 5 6 ]\nT [ 7 8 ]\n", "line 8",
     "a second row A"),
    (">M1 ONE\nA [ 0 2 ]\nC [ 0 4 ]\nG [ 0 6 ]\nT [ 0 8 ]\n", "line 1", "position 1"),
    (">M1 ONE\nA [ -1 2 ]\nC [ 3 4 ]\nG [ 5 6 ]\nT [ 7 8 ]\n", "line 2", "non-negative"),
    (GOOD + GOOD, "", "M1 appears twice"),
    ("MEME version 4\n\nMOTIF X\nletter-probability matrix: w= 2\n0.5 0.5 0 0\n0.3 0.7\n",
     "line 6", "expected 4 probabilities"),
    ("MEME version 4\n\nMOTIF X\nletter-probability matrix: w= 3\n0.5 0.5 0 0\n\n",
     "line 6", "has 1 rows, its header says w= 3"),
    ("MEME version 4\nALPHABET= ACDEFGHIKLMNPQRSTVWY\n", "line 2", "only DNA"),
    ("MEME version 4\n\nMOTIF X\n\nMOTIF Y\nletter-probability matrix:\n1 0 0 0\n", "line 3",
     "motif X has no 'letter-probability matrix:'"),
    ("hello\n", "line 1", "expected a JASPAR file"),
])
def test_bad_motif_files_name_the_file_and_line(tmp_path, text, where, what):
  path = tmp_path / "bad.jaspar"
  path.write_text(text)
  with pytest.raises(DataFormatError) as e:
    motifs.read_motif_file(path)
  assert str(e.value).startswith(f"{path}: {where}"), str(e.value)
  assert what in str(e.value)


def test_missing_or_binary_motif_file(tmp_path):
  with pytest.raises(MissingInputError, match="motif file not found"):
    motifs.read_motif_file(tmp_path / "none.meme")
  (tmp_path / "bin.meme").write_bytes(b"\xff\xfe\x00\x81")
  with pytest.raises(DataFormatError, match="not a text file"):
    motifs.read_motif_file(tmp_path / "bin.meme")
