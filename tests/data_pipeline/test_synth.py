"""Tests of the synthetic genome: the GeneExp layout, the planted answers, and their coherence."""

from __future__ import annotations

import csv
import hashlib
import json
import pathlib
import shutil

import h5py
import numpy as np
import pyBigWig
import pyfaidx
import pytest

from data_pipeline import truth as truth_lib
from data_pipeline.layout import RNA_FEATURE_COLUMNS, GeneExpLayout
from data_pipeline.synth import build as build_lib
from data_pipeline.synth import motifs, presets
from data_pipeline.synth import tables as tables_lib
from seq2exp_jax import cli

WINDOW = presets.PRESETS["tiny"].window
_CODE = np.full(256, 4, np.uint8)
for _i, _b in enumerate(b"ACGT"):
  _CODE[_b] = _i
  _CODE[ord(chr(_b).lower())] = _i


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> pathlib.Path:
  out = tmp_path_factory.mktemp("synth") / "tiny"
  assert cli.main(["synth", "--out", str(out), "--preset", "tiny", "--seed", "0", "--quiet"]) == 0
  return out


@pytest.fixture(scope="module")
def lay(root) -> GeneExpLayout:
  return GeneExpLayout(root, "K562")


def _read_tsv(path: pathlib.Path, sep: str = "\t") -> list[dict[str, str]]:
  with open(path, newline="") as fh:
    return list(csv.DictReader(fh, delimiter=sep))


def _codes(fasta: pyfaidx.Fasta, chrom: str, start: int, end: int) -> np.ndarray:
  return _CODE[np.frombuffer(str(fasta[chrom][start:end]).encode(), np.uint8)]


def _lengths(lay) -> dict[str, int]:
  return json.loads(lay.chr_length_json.read_text())["hg38"]


def _bed(path) -> list[tuple[str, int, int, str, int]]:
  rows = [ln.split("\t") for ln in path.read_text().splitlines()]
  return [(r[0], int(r[1]), int(r[2]), r[3], int(r[4])) for r in rows]


def test_every_layout_file_exists(lay):
  genes = _read_tsv(lay.gene_table)
  paths = [lay.chr_length_json, lay.fasta, pathlib.Path(str(lay.fasta) + ".fai"),
           lay.expression_csv, lay.fold_csv, lay.gene_table, lay.h3k27ac_bigwig,
           lay.dnase_bigwig, lay.blacklist_bed, lay.includelist_bed, lay.causal_bed,
           lay.decoy_bed, lay.truth_dir / "README", lay.truth_dir / "labels.json",
           lay.truth_dir / "elements.tsv"] + [lay.hic_file(g["chr"]) for g in genes]
  missing = [p for p in paths if not p.is_file()]
  assert not missing
  assert "noise ceiling" in (lay.truth_dir / "README").read_text().lower()
  # Nothing else is left behind next to the output (no temporary directories).
  assert sorted(p.name for p in lay.root.parent.iterdir()) == ["tiny"]


def test_fasta_and_index_match_chr_length(lay, tmp_path):
  lengths = _lengths(lay)
  fa = pyfaidx.Fasta(str(lay.fasta))
  assert {k: len(v) for k, v in fa.items()} == lengths
  # Our .fai equals the one pyfaidx builds itself from the FASTA.
  shutil.copy(lay.fasta, tmp_path / "g.fa")
  pyfaidx.Faidx(str(tmp_path / "g.fa"))
  assert (tmp_path / "g.fa.fai").read_text() == pathlib.Path(str(lay.fasta) + ".fai").read_text()
  text = "".join(str(fa[c][:]) for c in lengths)
  assert set(text) <= set("ACGTacgtN")
  assert 0.02 < sum(ch.islower() for ch in text) / len(text) < 0.3  # soft-masked repeats
  assert "N" * 20 in text                                            # N runs
  upper = text.upper()
  gc = (upper.count("G") + upper.count("C")) / (len(upper) - upper.count("N"))
  assert 0.37 < gc < 0.47


def test_tables_have_the_published_columns(lay):
  genes = _read_tsv(lay.gene_table)
  for col in ("chr", "start", "end", "name", "score", "strand", "tss", "symbol",
              "H3K27ac.RPM.TSS1Kb", "DHS.RPM.TSS1Kb"):
    assert col in genes[0]
  assert all(g["name"] == g["symbol"] and g["symbol"].startswith("ENSG") for g in genes)
  with open(lay.fold_csv) as fh:
    header = fh.readline().strip().split(",")
  assert header == ["ENSID", "chrom", *(f"fold_{i}" for i in range(1, 13)), "fold_enformer",
                    "Gene name"]
  folds = _read_tsv(lay.fold_csv, ",")
  assert {f["fold_11"] for f in folds} == {"train", "valid", "test"}
  assert not any(f["chrom"].startswith("chr") for f in folds)
  # Leave-chromosome-out: a chromosome is in one split only.
  split_of = {}
  for f in folds:
    assert split_of.setdefault(f["chrom"], f["fold_11"]) == f["fold_11"]
  expr = _read_tsv(lay.expression_csv, ",")
  assert list(expr[0])[0] == "ENSID"
  for col in (*RNA_FEATURE_COLUMNS, "K562_CAGE_128*3_sum", "GM12878_CAGE_128*3_sum",
              "Actual_K562"):
    assert all(np.isfinite(float(r[col])) for r in expr), col
  assert all(float(r["K562_CAGE_128*3_sum"]) >= 0 for r in expr)
  assert [r["ENSID"] for r in expr] == [g["symbol"] for g in genes]


def test_windows_run_past_chromosome_ends(lay):
  lengths = _lengths(lay)
  genes = _read_tsv(lay.gene_table)
  assert any(int(g["tss"]) - WINDOW // 2 < 0 for g in genes)
  assert any(int(g["tss"]) + WINDOW // 2 > lengths[g["chr"]] for g in genes)


def test_bigwigs_peak_at_causal_elements_and_decoys_alike(lay):
  lengths = _lengths(lay)
  elements = _bed(lay.causal_bed) + _bed(lay.decoy_bed)
  for path in (lay.dnase_bigwig, lay.h3k27ac_bigwig):
    bw = pyBigWig.open(str(path))
    assert bw.chroms() == lengths
    whole = np.concatenate([np.asarray(bw.values(c, 0, n)) for c, n in lengths.items()])
    assert np.isfinite(whole).all() and (whole >= 0).all()
    background = np.median(whole)
    for kind in ("causal", "decoy"):
      peak = [np.max(bw.values(c, max(0, s - 300), min(lengths[c], e + 300)))
              for c, s, e, name, _ in elements if (name.endswith(":causal")) == (kind == "causal")]
      assert np.median(peak) > 5 * background, (path.name, kind)


def test_hic_datasets_follow_distance_and_insulation(lay):
  lengths = _lengths(lay)
  genes = _read_tsv(lay.gene_table)
  rows = _read_tsv(lay.truth_dir / "elements.tsv")
  for g in genes:
    chrom, tss = g["chr"], int(g["tss"])
    with h5py.File(lay.hic_file(chrom), "r") as f:
      assert f"{chrom}_{tss}" in f
      vec = f[f"{chrom}_{tss}"][:]
    # Stored like the published files: the window clipped to the chromosome.
    lo, hi = max(tss - WINDOW // 2, 0), min(tss + WINDOW // 2, lengths[chrom])
    assert vec.shape == (hi - lo,) and (vec >= 0).all()
    padded = np.zeros(WINDOW, vec.dtype)
    padded[lo - (tss - WINDOW // 2):hi - (tss - WINDOW // 2)] = vec
    vec = padded
    pos = np.arange(tss - WINDOW // 2, tss + WINDOW // 2)
    # Contact decays with distance: the TSS's own kilobase beats the window's far ends.
    centre = vec[WINDOW // 2 - 500:WINDOW // 2 + 500].mean()
    for edge in (slice(0, 1000), slice(WINDOW - 1000, WINDOW)):
      if (vec[edge] > 0).all():
        assert centre > 1.4 * vec[edge].mean()
    for r in rows:
      if r["ensid"] != g["symbol"]:
        continue
      s, e = int(r["start"]) - pos[0], int(r["end"]) - pos[0]
      expected = 100.0 * (1 + abs(float(r["distance"])) / 5000.0) ** -1.0
      ratio = vec[s:e].mean() / expected
      if r["class"] == "insulated":
        assert ratio < 0.05 and float(r["contact"]) == 0.0
      else:
        assert 0.5 < ratio < 2.0
        assert float(r["contact"]) == pytest.approx(expected / 100.0)


def test_causal_elements_carry_the_grammar_and_decoys_do_not(lay):
  lengths = _lengths(lay)
  fa = pyfaidx.Fasta(str(lay.fasta))
  causal, decoys = _bed(lay.causal_bed), _bed(lay.decoy_bed)
  kinds = {name.split(":")[1] for *_, name, _ in decoys}
  assert kinds == {"dead", "split", "insulated"} and causal
  for chrom, s, e, name, units in causal + decoys:
    assert 0 <= s < e <= lengths[chrom]
    found = motifs.find_grammar(_codes(fa, chrom, s, e))
    klass = name.split(":")[1]
    assert len(found) == (units if klass in ("causal", "insulated") else 0), name
    if klass == "dead":  # the look-alike liver-factor pair is really there
      assert len(motifs.find_grammar(_codes(fa, chrom, s, e), "HNF4A", "FOXA2")) == units
  # Blacklisted stretches fall inside gene windows but never touch an element.
  windows = [(g["chr"], int(g["tss"]) - WINDOW // 2, int(g["tss"]) + WINDOW // 2)
             for g in _read_tsv(lay.gene_table)]
  blacklist = [(c, int(s), int(e)) for c, s, e in
               (ln.split("\t") for ln in lay.blacklist_bed.read_text().splitlines())]
  assert any(c == wc and ws <= s and e <= we for c, s, e in blacklist for wc, ws, we in windows)
  for chrom, s, e in blacklist:
    for c, es, ee, *_ in causal + decoys:
      assert c != chrom or e <= es or s >= ee


def _recompute_clean(lay) -> tuple[dict[str, float], dict]:
  """The README's formula, written out independently of data_pipeline.synth.labels."""
  meta = json.loads((lay.truth_dir / "labels.json").read_text())
  k, st = meta["constants"], meta["stats"]
  total: dict[str, float] = {}
  for r in _read_tsv(lay.truth_dir / "elements.tsv"):
    contact = 0.0 if r["class"] == "insulated" else (
        1 + abs(float(r["distance"])) / k["HIC_D0"]) ** -k["HIC_GAMMA"]
    effect = (int(r["units"]) * np.sqrt(float(r["dhs"]) * float(r["h3k27ac"])) * contact
              if r["class"] == "causal" else 0.0)
    total[r["ensid"]] = total.get(r["ensid"], 0.0) + effect
  expr = {r["ENSID"]: r for r in _read_tsv(lay.expression_csv, ",")}
  clean = {}
  for g in _read_tsv(lay.gene_table):
    ensid = g["symbol"]
    drive = np.log1p(total.get(ensid, 0.0) / k["ACTIVITY_REF"])
    promoter = np.log1p(np.sqrt(float(g["H3K27ac.RPM.TSS1Kb"]) * float(g["DHS.RPM.TSS1Kb"])))
    rna = sum(w * float(expr[ensid][c]) for w, c in zip(k["RNA_WEIGHTS"], RNA_FEATURE_COLUMNS))
    clean[ensid] = (k["B0"] + k["W_DRIVE"] * (drive - st["drive_mean"]) / st["drive_sd"]
                    + k["W_PROMOTER"] * (promoter - st["promoter_mean"]) / st["promoter_sd"]
                    + k["W_RNA"] * (rna - st["rna_mean"]) / st["rna_sd"])
  return clean, meta


def test_labels_recomputed_from_truth_match_the_csv(lay):
  clean, meta = _recompute_clean(lay)
  for ensid, c in clean.items():
    assert c == pytest.approx(meta["genes"][ensid]["clean"], abs=1e-9)
  expr = {r["ENSID"]: r for r in _read_tsv(lay.expression_csv, ",")}
  for ensid in clean:
    label = np.log10(1 + float(expr[ensid][meta["label_column"]]))
    assert label == pytest.approx(meta["genes"][ensid]["label"], abs=1e-9)


@pytest.fixture(scope="module")
def larger(tmp_path_factory) -> GeneExpLayout:
  """150 genes with short windows: enough genes to measure the label noise."""
  out = tmp_path_factory.mktemp("synth_larger") / "d"
  build_lib.build(out, presets.resolve("small", n_genes=150, window=8_192), seed=3,
                  progress=False)
  return GeneExpLayout(out)


def test_label_noise_is_as_stated(larger):
  clean, meta = _recompute_clean(larger)
  expr = {r["ENSID"]: r for r in _read_tsv(larger.expression_csv, ",")}
  ids = list(clean)
  c = np.array([clean[i] for i in ids])
  y = np.array([np.log10(1 + float(expr[i]["K562_CAGE_128*3_sum"])) for i in ids])
  sigma = meta["noise_sigma"]
  kept = y > 0  # clipped genes (label 0) have a one-sided residual
  resid = (y - c)[kept]
  assert abs(resid.mean()) < 3 * sigma / np.sqrt(kept.sum())
  assert 0.85 < resid.std() / sigma < 1.15
  pearson = np.corrcoef(c, y)[0, 1]
  assert pearson == pytest.approx(meta["noise_ceiling_pearson"], abs=1e-9)
  assert 0.85 < pearson < 0.95
  # The enhancers matter: promoter + mRNA features alone explain far less than the ceiling.
  genes = _read_tsv(larger.gene_table)
  prom = np.array([np.log1p(np.sqrt(float(g["H3K27ac.RPM.TSS1Kb"]) * float(g["DHS.RPM.TSS1Kb"])))
                   for g in genes])
  x = np.column_stack([np.ones(len(ids)), prom] +
                      [[float(expr[i][col]) for i in ids] for col in RNA_FEATURE_COLUMNS])
  fit = x @ np.linalg.lstsq(x, y, rcond=None)[0]
  assert np.corrcoef(fit, y)[0, 1] < pearson - 0.15
  # Signals alone do not give the answer: an ABC score over every accessible element
  # (causal and decoy alike) added to that fit stays well below the ceiling.
  abc = {i: 0.0 for i in ids}
  for r in _read_tsv(larger.truth_dir / "elements.tsv"):
    abc[r["ensid"]] += np.sqrt(float(r["dhs"]) * float(r["h3k27ac"])) * (
        1 + abs(float(r["distance"])) / 5000.0) ** -1.0
  x_abc = np.column_stack([x, np.log1p(np.array([abc[i] for i in ids]) / 100.0)])
  fit_abc = x_abc @ np.linalg.lstsq(x_abc, y, rcond=None)[0]
  assert np.corrcoef(fit_abc, y)[0, 1] < pearson - 0.1


def _tree_hash(root: pathlib.Path) -> dict[str, str]:
  return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
          for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes(root, tmp_path):
  build_lib.build(tmp_path / "again", presets.resolve("tiny"), seed=0, progress=False,
                  preset_name="tiny")
  assert _tree_hash(tmp_path / "again") == _tree_hash(root)
  build_lib.build(tmp_path / "other", presets.resolve("tiny"), seed=1, progress=False,
                  preset_name="tiny")
  other = _tree_hash(tmp_path / "other")
  assert other["hg38/hg38.ml.fa"] != _tree_hash(root)["hg38/hg38.ml.fa"]


def test_read_truth_codes_and_padding(lay):
  lengths = _lengths(lay)
  expected = {c: np.zeros(n, np.uint8) for c, n in lengths.items()}
  for path, code in ((lay.causal_bed, 1), (lay.decoy_bed, 2)):
    for c, s, e, *_ in _bed(path):
      expected[c][s:e] = code
  for chrom, n in lengths.items():
    assert (truth_lib.read_truth(lay, chrom, 0, n) == expected[chrom]).all()
  chrom, n = next(iter(lengths.items()))
  c, s, e, *_ = _bed(lay.causal_bed)[0]
  got = truth_lib.read_truth(lay, c, s - 5, e + 5)
  assert got.dtype == np.uint8 and got.shape == (e - s + 10,)
  assert (got[5:-5] == 1).all() and (got[:5] == 0).all()
  padded = truth_lib.read_truth(lay, chrom, -100, n + 100)
  assert padded.shape == (n + 200,)
  assert (padded[:100] == 0).all() and (padded[-100:] == 0).all()
  assert (padded[100:-100] == expected[chrom]).all()
  assert (truth_lib.read_truth(lay, chrom, n + 10, n + 20) == 0).all()
  with pytest.raises(KeyError, match="chrNope"):
    truth_lib.read_truth(lay, "chrNope", 0, 10)


def test_read_truth_without_truth_files(tmp_path):
  with pytest.raises(FileNotFoundError, match="chr_length.json"):
    truth_lib.read_truth(GeneExpLayout(tmp_path), "chr1", 0, 10)


def test_bad_arguments_give_clear_errors(root, tmp_path, capsys):
  assert cli.main(["synth", "--out", str(tmp_path / "a"), "--window", "8191", "--quiet"]) == 2
  assert "--window 8191" in capsys.readouterr().err
  assert cli.main(["synth", "--out", str(root), "--quiet"]) == 2
  assert "already exists" in capsys.readouterr().err
  with pytest.raises(SystemExit):
    cli.main(["synth", "--out", str(tmp_path / "b"), "--preset", "huge"])
  assert "invalid choice: 'huge'" in capsys.readouterr().err
  with pytest.raises(ValueError, match="unknown preset"):
    presets.resolve("huge")
  with pytest.raises(ValueError, match="at least 3"):
    presets.resolve("tiny", n_genes=2)
  assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_other_cell_type_uses_its_own_file_names(tmp_path):
  out = tmp_path / "gm"
  assert cli.main(["synth", "--out", str(out), "--cell-type", "GM12878", "--quiet"]) == 0
  lay = GeneExpLayout(out, "GM12878")
  for p in (lay.gene_table, lay.h3k27ac_bigwig, lay.dnase_bigwig, lay.hic_dir):
    assert p.exists(), p
  meta = json.loads((lay.truth_dir / "labels.json").read_text())
  assert meta["label_column"] == "GM12878_CAGE_128*3_sum"
  expr = {r["ENSID"]: r for r in _read_tsv(lay.expression_csv, ",")}
  for ensid, g in meta["genes"].items():
    assert np.log10(1 + float(expr[ensid]["GM12878_CAGE_128*3_sum"])) == pytest.approx(
        g["label"], abs=1e-9)


def test_failed_build_leaves_nothing_and_keeps_the_old_output(tmp_path, monkeypatch):
  out = tmp_path / "d"
  out.mkdir()
  (out / "old").write_text("keep me")

  def boom(*args, **kwargs):
    raise RuntimeError("disk full")
  monkeypatch.setattr(tables_lib, "write_all", boom)
  with pytest.raises(RuntimeError, match="disk full"):
    build_lib.build(out, presets.resolve("tiny"), seed=0, overwrite=True, progress=False)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]
  assert (out / "old").read_text() == "keep me"
  monkeypatch.undo()
  build_lib.build(out, presets.resolve("tiny"), seed=0, overwrite=True, progress=False)
  assert not (out / "old").exists() and GeneExpLayout(out).fasta.is_file()
