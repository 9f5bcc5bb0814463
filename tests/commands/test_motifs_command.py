"""`seq2exp motifs` end to end on a small genome with KLF1 planted in its elements: the
table, plot, summary and background BED as a set; bad inputs as one line naming the file
and line."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from data_pipeline.readers.motifs import read_motif_file
from seq2exp_jax import cli
from seq2exp_jax.outputs.motifs import TABLE_COLUMNS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ELEMENTS = [("chr1", 2000 + 1500 * i, 2300 + 1500 * i) for i in range(24)]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
  """A GeneExp-layout data root holding only its FASTA, and the elements' BED."""
  rng = np.random.default_rng(0)
  base = tmp_path_factory.mktemp("motifs")
  chrom = rng.choice(np.array(list("ACGT")), size=40_000, p=[0.3, 0.2, 0.2, 0.3])
  klf1 = "".join("ACGT"[b] for b in next(
      m for m in read_motif_file() if m.name == "KLF1").counts.argmax(1))
  for _, start, _ in ELEMENTS:
    chrom[start + 100:start + 108] = list(klf1)
  (base / "hg38").mkdir()
  (base / "hg38" / "hg38.ml.fa").write_text(f">chr1\n{''.join(chrom)}\n>chr2\n{'ACGT' * 500}\n")
  lines = [f"{c}\t{s}\t{e}\tENSG{i:05d}\t500\t.\n" for i, (c, s, e) in enumerate(ELEMENTS)]
  (base / "elements.bed").write_text("track name=x\n" + "".join(lines))
  return base


def _table(path):
  with open(path, newline="") as f:
    return list(csv.DictReader(f, delimiter="\t"))


def test_motifs_writes_the_table_plot_and_background(root, tmp_path, capsys):
  out = tmp_path / "out"
  out.mkdir()
  (out / "mine.txt").write_text("kept")
  argv = ["motifs", "--elements", str(root / "elements.bed"), "--data-root", str(root),
          "--out", str(out), "--flank", "6000", "--seed", "3"]
  assert cli.main(argv) == 0
  assert "KLF1" in capsys.readouterr().out
  rows = _table(out / "motifs.tsv")
  assert tuple(rows[0]) == TABLE_COLUMNS and len(rows) == 4
  assert rows[0]["name"] == "KLF1" and float(rows[0]["q_value"]) < 0.05
  assert int(rows[0]["elements"]) == 24 and int(rows[0]["background"]) == 48
  assert all(float(r["q_value"]) >= 0.05 for r in rows[1:])
  assert (out / "motifs.png").read_bytes().startswith(PNG_SIGNATURE)
  summary = json.loads((out / "motifs.json").read_text())
  assert summary["significant_q05"] == ["KLF1"] and summary["seed"] == 3
  background = [line.split("\t") for line in (out / "background.bed").read_text().splitlines()]
  assert len(background) == 48 and all(int(e) - int(s) == 300 for _, s, e, *_ in background)
  assert (out / "mine.txt").read_text() == "kept"
  first = (out / "background.bed").read_bytes()
  assert cli.main(argv) == 0 and (out / "background.bed").read_bytes() == first  # seeded
  # Shuffled background: no regions in the genome, so no background.bed left behind.
  assert cli.main(argv + ["--background", "shuffled"]) == 0
  assert not (out / "background.bed").exists() and (out / "mine.txt").exists()
  assert _table(out / "motifs.tsv")[0]["name"] == "KLF1"
  pool = tmp_path / "pool.bed"  # between the elements, on chr1
  pool.write_text("".join(f"chr1\t{s + 700}\t{s + 1000}\n" for _, s, _ in ELEMENTS))
  assert cli.main(argv + ["--background", "bed", "--background-bed", str(pool)]) == 0
  starts = {int(line.split("\t")[1]) for line in (out / "background.bed").open()}
  assert starts and starts <= {s + 700 for _, s, _ in ELEMENTS}  # centred on the pool's
  assert _table(out / "motifs.tsv")[0]["name"] == "KLF1"


def _one_line(capsys, argv) -> str:
  assert cli.main(["motifs", *argv]) == 2
  lines = capsys.readouterr().err.splitlines()
  assert len(lines) == 1 and lines[0].startswith("seq2exp motifs: "), lines
  return lines[0]


def test_bad_inputs_give_one_line_naming_file_and_line(root, tmp_path, capsys):
  out = tmp_path / "out"
  bed = tmp_path / "bad.bed"
  bed.write_text("chr1\t100\t400\ta\nchrUn\t5\t50\tb\n")
  base = ["--fasta", str(root / "hg38" / "hg38.ml.fa"), "--out", str(out)]
  message = _one_line(capsys, ["--elements", str(bed), *base])
  assert f"{bed}: line 2: chromosome 'chrUn' is not in the genome FASTA" in message
  bed.write_text("chr2\t100\t2400\ta\n")
  assert f"{bed}: line 1 " in _one_line(capsys, ["--elements", str(bed), *base])
  bed.write_text("chr1\t100\tx\n")
  assert f"{bed}: line 1 " in _one_line(capsys, ["--elements", str(bed), *base])
  motif_file = tmp_path / "bad.jaspar"
  motif_file.write_text(">M1 X\nA [ 1 2 ]\nC [ 1 2 ]\nG [ 1 two ]\nT [ 1 2 ]\n")
  message = _one_line(capsys, ["--elements", str(root / "elements.bed"), "--motifs",
                               str(motif_file), *base])
  assert f"{motif_file}: line 4: " in message
  assert "not found" in _one_line(capsys, ["--elements", str(tmp_path / "none.bed"), *base])
  assert "--background-bed FILE goes with --background bed" in _one_line(
      capsys, ["--elements", str(root / "elements.bed"), "--background", "bed", *base])
  assert not out.exists()
