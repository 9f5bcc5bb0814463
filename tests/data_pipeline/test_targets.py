"""`build-data --target cage|rna`: the RNA-seq target is the expression CSV's Actual_<cell>
as stored (the original's expr_type='RNA'), the CAGE target log10(1 + CAGE); the target
names the data set and is in its metadata; a missing label column is one line naming the
file and the column."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import tensorflow_datasets as tfds

from conftest_data import SYNTH_WINDOW, tiny_synthetic, write_layout
from data_pipeline import tfds_builder
from data_pipeline.errors import DataFormatError
from data_pipeline.layout import GeneExpLayout
from data_pipeline.readers import tables
from seq2exp_jax.cli import main


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  return tiny_synthetic(tmp_path_factory.getbasetemp())


def _expression_columns(layout: GeneExpLayout, column: str) -> dict[str, float]:
  with layout.expression_csv.open(newline="") as f:
    return {r["ENSID"]: float(r[column]) for r in csv.DictReader(f)}


def _stored_targets(ds_dir) -> dict[str, float]:
  source = tfds.builder_from_directory(str(ds_dir)).as_data_source()
  return {ex["ensid"].decode(): float(ex["target"]) for split in source
          for ex in source[split]}


def test_rna_target_is_the_stored_actual_column(tiny, tmp_path):
  root, cage_dir = tiny
  layout = GeneExpLayout(root, "K562")
  out = tmp_path / "tfds"
  assert main(["build-data", "--data-root", str(root), "--window", str(SYNTH_WINDOW),
               "--out", str(out), "--target", "rna"]) == 0
  rna_dir = out / "geneexp" / f"k562_{SYNTH_WINDOW}_rna" / "1.0.0"
  rna = _stored_targets(rna_dir)
  actual = _expression_columns(layout, "Actual_K562")
  cage = _expression_columns(layout, "K562_CAGE_128*3_sum")
  assert len(rna) == 20
  for ensid, value in rna.items():
    assert value == pytest.approx(actual[ensid], rel=1e-6)  # as stored, float32
  for ensid, value in _stored_targets(cage_dir).items():  # the default: log10(1 + CAGE)
    assert value == pytest.approx(np.log10(1.0 + cage[ensid]), rel=1e-6)
  # Two independent noisy draws in the synthetic tables: the targets really differ.
  assert max(abs(rna[g] - np.log10(1 + cage[g])) for g in rna) > 0.1
  meta = json.loads((rna_dir / "metadata.json").read_text())
  assert (meta["target"], meta["target_column"], meta["fold"]) == ("rna", "Actual_K562", "11")
  assert json.loads((cage_dir / "metadata.json").read_text())["target"] == "cage"
  # Read back by name, the config knows its target.
  cfg = tfds_builder.config_from_name(f"k562_{SYNTH_WINDOW}_fold3_rna", None)
  assert (cfg.fold, cfg.target, cfg.name) == (3, "rna", f"k562_{SYNTH_WINDOW}_fold3_rna")
  assert tfds_builder.make_config("K562", 1000, 11, target="rna").name == "k562_1000_rna"


def test_rna_values_may_be_negative_cage_may_not(tmp_path):
  """Xpresso's RNA-seq values are log-scale (log10 of RPKM + 0.1 reaches -1)."""
  fx = write_layout(tmp_path / "root")
  path = fx.layout.expression_csv
  lines = path.read_text().splitlines()
  lines[0] += ",Actual_K562"
  lines[1:] = [f"{line},{-0.5 + i}" for i, line in enumerate(lines[1:])]
  path.write_text("\n".join(lines) + "\n")
  got = tables.read_target(path, "Actual_K562", "rna")
  assert sorted(got.values()) == [-0.5 + i for i in range(len(lines) - 1)]
  genes = tables.load_genes(fx.layout, 11, "rna").splits
  assert genes["train"][0].target == got[genes["train"][0].ensid]
  with pytest.raises(DataFormatError, match="expected a non-negative CAGE count"):
    tables.read_target(path, "Actual_K562", "cage")


def test_a_missing_rna_column_names_the_file_and_the_column(tmp_path, capsys):
  fx = write_layout(tmp_path / "root")  # the expression CSV has no Actual_<cell> column
  with pytest.raises(DataFormatError, match=r"lacks column\(s\) \['Actual_K562'\]"):
    tables.load_genes(fx.layout, 11, "rna")
  out = tmp_path / "tfds"
  assert main(["build-data", "--data-root", str(fx.root), "--window", "1000", "--out",
               str(out), "--target", "rna"]) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and err[0].startswith("seq2exp build-data: ")
  assert str(fx.layout.expression_csv) in err[0] and "'Actual_K562'" in err[0]
  assert "--target rna" in err[0]
  assert not any(out.rglob("dataset_info.json"))
