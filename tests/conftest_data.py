"""Writers of small GeneExp-layout data roots for the reader, builder and loader tests.

`write_layout` writes every file of docs/data.md (FASTA, bigWigs, Hi-C HDF5, CSVs, gene table,
BED masks) from known numpy arrays and returns those arrays, so a test can compare what the
readers return with an independent slice of the truth. Bad-input tests start from a good
layout and break one file.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import h5py
import numpy as np
import pyBigWig

from data_pipeline.layout import RNA_FEATURE_COLUMNS, GeneExpLayout

CHROMS = {"chr1": 3000, "chr2": 2500}
WINDOW = 1000
# ensid -> (chrom, tss, strand, split); G1 reaches past chr1's start, G2 past its end.
GENES = {
    "ENSG01": ("chr1", 100, "+", "train"),
    "ENSG02": ("chr1", 2800, "-", "train"),
    "ENSG03": ("chr2", 1200, "+", "train"),
    "ENSG04": ("chr2", 1300, "-", "valid"),
    "ENSG05": ("chr1", 1500, "+", "valid"),
    "ENSG06": ("chr2", 600, "+", "test"),
}
ABSENT_FROM_GENE_TABLE = "ENSG99"  # in the fold CSV only: must be skipped, counted
COVERED_CHR1 = 2000  # the bigWigs store chr1 only up to here (the rest reads as 0)
BLACKLIST = [("chr1", 50, 120), ("chr2", 1100, 1150), ("chr2", 1140, 1200)]
INCLUDELIST = [("chr1", 0, 700), ("chr2", 900, 2000)]
PEAK_BLOCKS = [("chr1", 300, 600), ("chr1", 1400, 1700), ("chr2", 1000, 1300)]


@dataclasses.dataclass
class Fixture:
  root: pathlib.Path
  layout: GeneExpLayout
  seq: dict[str, bytes]  # the FASTA text of each chromosome
  h3k27ac: dict[str, np.ndarray]  # float32 (chrom length,) values a reader must return
  dnase: dict[str, np.ndarray]
  hic: dict[str, np.ndarray]  # ensid -> raw contact vector float32 (WINDOW,), TSS-centred
  rna: dict[str, np.ndarray]  # ensid -> float32 (8,)
  rpm: dict[str, tuple[float, float]]
  cage: dict[str, float]


def write_bigwig(path: pathlib.Path, values: dict[str, np.ndarray], covered: dict[str, int]):
  """Writes per-base values of [0, covered[chrom]) of each chromosome."""
  bw = pyBigWig.open(str(path), "w")
  bw.addHeader(list(CHROMS.items()), maxZooms=0)
  for chrom in CHROMS:
    v = values[chrom][:covered[chrom]].astype(np.float64)
    bw.addEntries(chrom, 0, values=v.tolist(), span=1, step=1)
  bw.close()


def write_bed(path: pathlib.Path, rows) -> None:
  path.write_text("".join(f"{c}\t{s}\t{e}\n" for c, s, e in rows))


def write_layout(root: pathlib.Path, seed: int = 0, cell_type: str = "K562") -> Fixture:
  rng = np.random.default_rng(seed)
  layout = GeneExpLayout(root, cell_type)
  root.mkdir(parents=True, exist_ok=True)
  layout.chr_length_json.write_text(json.dumps({"hg38": CHROMS}))

  # FASTA: upper and lower case and some N and IUPAC letters, 60 bases per line.
  layout.fasta.parent.mkdir(parents=True, exist_ok=True)
  alphabet = np.frombuffer(b"ACGTACGTACGTacgtNR", np.uint8)
  seq = {c: alphabet[rng.integers(0, len(alphabet), n)].tobytes() for c, n in CHROMS.items()}
  with layout.fasta.open("wb") as f:
    for c, s in seq.items():
      f.write(b">" + c.encode() + b" synthetic\n")
      for i in range(0, len(s), 60):
        f.write(s[i:i + 60] + b"\n")

  covered = {"chr1": COVERED_CHR1, "chr2": CHROMS["chr2"]}
  h3k27ac = {c: rng.random(n, dtype=np.float32) for c, n in CHROMS.items()}
  dnase = {c: (rng.random(n, dtype=np.float32) * 0.2) for c, n in CHROMS.items()}
  for c, s, e in PEAK_BLOCKS:
    dnase[c][s:e] += 20.0
  for track, path in ((h3k27ac, layout.h3k27ac_bigwig), (dnase, layout.dnase_bigwig)):
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bigwig(path, track, covered)
    track["chr1"][COVERED_CHR1:] = 0.0  # what a reader must return there

  # Hi-C: one contact vector per gene over its window clipped to the chromosome, as the
  # published files store it (NaN in places; NaN reads as 0). `hic` keeps the whole
  # TSS-centred window for the expectations.
  layout.hic_dir.mkdir(parents=True, exist_ok=True)
  hic = {}
  for chrom in CHROMS:
    with h5py.File(layout.hic_file(chrom), "w") as f:
      for ensid, (c, tss, _, _) in GENES.items():
        if c == chrom:
          v = (rng.random(WINDOW) * 100).astype(np.float32)
          v[::97] = np.nan
          start = tss - WINDOW // 2
          lo, hi = max(start, 0), min(start + WINDOW, CHROMS[chrom])
          f.create_dataset(f"{chrom}_{tss}", data=v[lo - start:hi - start])
          hic[ensid] = v

  layout.gene_table.parent.mkdir(parents=True, exist_ok=True)
  rpm = {g: (float(rng.random() * 50), float(rng.random() * 50)) for g in GENES}
  lines = ["chr\tstart\tend\tname\tscore\tstrand\tsymbol\ttss\tH3K27ac.RPM.TSS1Kb\t"
           "DHS.RPM.TSS1Kb\n"]
  for g, (c, tss, strand, _) in GENES.items():
    lines.append(f"{c}\t{tss - 50}\t{tss + 50}\t{g}\t0\t{strand}\t{g}\t{tss}\t"
                 f"{rpm[g][0]!r}\t{rpm[g][1]!r}\n")
  layout.gene_table.write_text("".join(lines))

  rna = {g: rng.normal(size=8).astype(np.float32) for g in list(GENES) + [ABSENT_FROM_GENE_TABLE]}
  cage = {g: float(rng.random() * 1000) for g in rna}
  cols = ["gene_id", "chrom", "Gene name", *RNA_FEATURE_COLUMNS, "K562_CAGE_128*3_sum",
          "GM12878_CAGE_128*3_sum"]
  lines = [",".join(f'"{c}"' if "*" in c else c for c in cols) + "\n"]
  for g, v in rna.items():
    chrom = GENES.get(g, ("chr1",))[0][3:]
    lines.append(",".join([g, chrom, f"NAME{g[-2:]}", *(repr(float(x)) for x in v),
                           repr(cage[g]), repr(cage[g] / 2)]) + "\n")
  layout.expression_csv.write_text("".join(lines))

  header = "ENSID,chrom," + ",".join(f"fold_{i}" for i in range(1, 13)) + \
      ",fold_enformer,Gene name\n"
  lines = [header]
  for g in rna:
    c, _, _, split = GENES.get(g, ("chr1", 0, "+", "train"))
    folds = ["train"] * 12
    folds[10] = split
    folds[0] = "test" if split == "train" else "train"
    lines.append(f"{g},{c[3:]},{','.join(folds)},valid,NAME{g[-2:]}\n")
  layout.fold_csv.write_text("".join(lines))

  write_bed(layout.blacklist_bed, BLACKLIST)
  write_bed(layout.includelist_bed, INCLUDELIST)
  return Fixture(root, layout, seq, h3k27ac, dnase, hic, rna, rpm, cage)


def expected_window(values: np.ndarray, start: int, end: int, fill=0) -> np.ndarray:
  """values[start:end] of a whole-chromosome array, `fill` outside [0, len)."""
  out = np.full(end - start, fill, dtype=values.dtype)
  lo, hi = max(start, 0), min(end, len(values))
  out[lo - start:hi - start] = values[lo:hi]
  return out


def interval_mask(rows, chrom: str, length: int) -> np.ndarray:
  """bool (length,) True inside the rows of `chrom`."""
  m = np.zeros(length, bool)
  for c, s, e in rows:
    if c == chrom:
      m[s:e] = True
  return m


# ------------------------------------------------- synthetic `tiny` data set, built once

SYNTH_GENES = 20  # tiny preset with 20 genes: 18 train, 1 valid, 1 test (fold 11)
SYNTH_WINDOW = 8192  # the tiny preset's window
_BUILT: dict[str, tuple[pathlib.Path, pathlib.Path]] = {}


def tiny_synthetic(base: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
  """(data root, prepared data set dir) of `seq2exp synth --preset tiny --genes 20` built
  with `seq2exp build-data`; made once per test session under `base`."""
  if "tiny" not in _BUILT:
    from seq2exp_jax.cli import main  # pylint: disable=import-outside-toplevel
    root, out = base / "tiny_root", base / "tiny_tfds"
    assert main(["synth", "--out", str(root), "--preset", "tiny", "--genes",
                 str(SYNTH_GENES), "--seed", "0", "--quiet"]) == 0
    assert main(["build-data", "--data-root", str(root), "--cell-type", "K562", "--window",
                 str(SYNTH_WINDOW), "--fold", "11", "--out", str(out)]) == 0
    _BUILT["tiny"] = (root, out / "geneexp" / f"k562_{SYNTH_WINDOW}" / "1.0.0")
  return _BUILT["tiny"]


def smoke_soft_run(data_dir: pathlib.Path, workdir: pathlib.Path,
                   window: int | None = None) -> pathlib.Path:
  """`workdir` holding a finished 2-step `seq2exp_soft.py:smoke` run on the prepared data
  set `data_dir` (reading a `window` crop when given)."""
  # pylint: disable=import-outside-toplevel
  from seq2exp_jax.config import loader as configs
  from seq2exp_jax.train.trainer import train_and_evaluate
  repo = pathlib.Path(__file__).resolve().parents[1]
  c = configs.load_config(str(repo / "experiments" / "seq2exp_soft.py:smoke"))
  c.data.dir = str(data_dir)
  if window is not None:
    c.data.window = window
  c.train.update(steps=2, eval_every=2)
  train_and_evaluate(c, workdir)
  return workdir


def export_and_reload(workdir: pathlib.Path, artifact: pathlib.Path):
  """`seq2exp export` of a finished run to `artifact`, then (the served predictor, the run's
  task, its params): what a served prediction is compared with."""
  # pylint: disable=import-outside-toplevel
  from seq2exp_jax import cli
  from seq2exp_jax.outputs.serving import ExportedPredictor
  from seq2exp_jax.train import checkpoint
  from seq2exp_jax.train.task import build_task
  assert cli.main(["export", "--workdir", str(workdir), "--out", str(artifact)]) == 0
  config, params, _ = checkpoint.load_run(workdir)
  return ExportedPredictor.load(artifact), build_task(config), params
