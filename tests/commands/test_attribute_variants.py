"""`seq2exp attribute` and `seq2exp score-variants` on the tiny synthetic data set with
random Seq2Exp-soft smoke params (`--params`): the files open with pyBigWig, pandas and
pysam in the genes' window coordinates, ISM and the variant table agree on the same SNVs,
and bad VCFs are refused in one line naming the line."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pyBigWig
import pysam
import pytest
from flax import serialization

from conftest import REPO
from conftest_data import tiny_synthetic
from data_pipeline.batch import Batch
from data_pipeline.loader import one_hot_dna, open_split
from seq2exp_jax import cli
from seq2exp_jax.config import loader as configs
from seq2exp_jax.outputs import attribution as attr
from seq2exp_jax.outputs import variants as var
from seq2exp_jax.train import init_params
from seq2exp_jax.train.task import build_task

SOFT_SMOKE = str(REPO / "experiments" / "seq2exp_soft.py:smoke")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
  """(data set dir, --params/--config arguments, the test gene's model window)."""
  ds = tiny_synthetic(tmp_path_factory.getbasetemp())[1]
  config = configs.load_config(SOFT_SMOKE)
  shapes = init_params.expected_params(build_task(config), config.data.window)
  rng = np.random.default_rng(3)
  params = jax.tree.map(lambda s: (rng.normal(size=s.shape) * 0.1).astype(s.dtype), shapes)
  path = tmp_path_factory.mktemp("params") / "soft.msgpack"
  path.write_bytes(serialization.msgpack_serialize(params))
  example = open_split(str(ds), "test")[0]
  length, tss = config.data.window, int(example["tss"])
  centre = len(example["dna"]) // 2
  gene = {"ensid": example["ensid"].decode(), "chrom": example["chrom"].decode(), "tss": tss,
          "start": tss - length // 2, "example": example,
          "codes": example["dna"][centre - length // 2:centre + length // 2]}
  return ds, ["--params", str(path), "--config", SOFT_SMOKE], gene


def _attributions(gene, params_path: str) -> dict[str, np.ndarray]:
  """Gradient x input of the gene's window computed here from the stored example."""
  config = configs.load_config(SOFT_SMOKE)
  task = build_task(config)
  params = init_params.read_msgpack(params_path).params
  example = gene["example"]
  length = len(gene["codes"])
  centre = len(example["dna"]) // 2
  crop = slice(centre - length // 2, centre + length // 2)
  batch = Batch(dna=one_hot_dna(jnp.asarray(example["dna"][crop][None])),
                signals=jnp.asarray(example["signals"][crop][None]),
                rna_feat=jnp.asarray(example["rna_feat"][None]),
                blacklist=jnp.asarray(example["blacklist"][crop][None]))
  out = jax.device_get(attr.make_gradient_x_input(
      lambda p, b: task.apply(p, b))(params, batch))
  return {"dna": out["dna"][0], **{t: out["signals"][0, :, s]
                                   for s, t in enumerate(("H3K27ac", "DNase", "HiC"))}}


def _base(gene, i: int) -> str:
  return "ACGTN"[gene["codes"][i]]


def test_attribute_and_score_variants_agree_in_window_coordinates(setup, tmp_path, capsys):
  ds, model, gene = setup
  chrom, start = gene["chrom"], gene["start"]
  lo = start + 700  # 6 bases downstream of the TSS, outside the promoter
  out = tmp_path / "attr"
  assert cli.main(["attribute", *model, "--data", str(ds), "--split", "test", "--out",
                   str(out), "--ism", f"{chrom}:{lo}-{lo + 6}", "--plot-genes", "1"]) == 0
  expected = _attributions(gene, model[1])
  genes = pd.read_csv(out / "genes.tsv", sep="\t")
  assert list(genes.ensid) == [gene["ensid"]] and int(genes.window_start[0]) == start
  length = len(gene["codes"])
  for track in ("dna", "H3K27ac", "DNase", "HiC"):
    with pyBigWig.open(str(out / f"{track}.bw")) as bw:
      intervals = bw.intervals(chrom)
      assert intervals[0][0] >= start and intervals[-1][1] <= start + length  # the window
      values = np.nan_to_num(np.array(bw.values(chrom, start, start + length)))
      np.testing.assert_allclose(values.sum(), genes[f"{track}_sum"][0], rtol=1e-4,
                                 atol=1e-7)
      # The gene's own window, attributed here from the stored example, base for base.
      np.testing.assert_allclose(values, expected[track], rtol=1e-4,
                                 atol=1e-6 * np.abs(expected[track]).max())
  assert (out / "plots" / f"{gene['ensid']}.png").stat().st_size > 0

  ism = pd.read_csv(out / "ism.tsv", sep="\t")
  assert list(ism.columns) == ["chr", "pos", "ref", "alt", "ensid", "delta"]
  offsets = ism.pos.to_numpy() - 1 - start
  assert sorted(set(offsets)) == list(range(700, 706))
  assert list(ism.ref) == [_base(gene, i) for i in offsets]
  assert len(ism) == sum(3 if gene["codes"][i] < 4 else 4 for i in range(700, 706))
  with pyBigWig.open(str(out / "ism_max_abs.bw")) as bw:
    np.testing.assert_allclose(bw.values(chrom, lo, lo + 6),
                               ism.delta.abs().groupby(ism.pos).max(), rtol=1e-5)

  # The same SNVs as a VCF, with an insertion, a deletion and a variant outside the window.
  snvs = [var.Variant(0, chrom, int(r.pos), f"snv{k}", r.ref, r.alt)
          for k, r in enumerate(ism.head(3).itertuples())]
  indels = [var.Variant(0, chrom, start + 301, "ins", _base(gene, 300), _base(gene, 300) + "GA"),
            var.Variant(0, chrom, start + 800, "del", _base(gene, 799) + _base(gene, 800),
                        _base(gene, 799))]
  far = start + length + 1500
  outside = var.Variant(0, chrom, far, "far", "A", "C")
  vcf = tmp_path / "v.vcf"
  sizes = {"chr19": 166756, "chr21": 11306, "chr22": 7709}
  var.write_vcf(vcf, snvs + indels + [outside], sizes)
  with pysam.VariantFile(str(vcf)) as f:
    assert [r.id for r in f] == ["ins", "snv0", "snv1", "snv2", "del", "far"]
  table = tmp_path / "effects.tsv"
  capsys.readouterr()
  assert cli.main(["score-variants", *model, "--data", str(ds), "--vcf", str(vcf), "--out",
                   str(table), "--split", "test"]) == 0
  assert "5 (allele, gene) pairs scored" in capsys.readouterr().out
  effects = pd.read_csv(table, sep="\t")
  assert tuple(effects.columns) == var.COLUMNS
  assert list(effects.id) == ["ins", "snv0", "snv1", "snv2", "del"]  # VCF order, far absent
  assert set(effects.ensid) == {gene["ensid"]}
  assert list(effects.distance_to_tss) == list(effects.pos - 1 - gene["tss"])
  np.testing.assert_allclose(effects.ref_prediction, genes.prediction[0], rtol=1e-5)
  np.testing.assert_allclose(effects.delta, effects.alt_prediction - effects.ref_prediction,
                             atol=2e-6)
  snv = effects.set_index("id").loc[["snv0", "snv1", "snv2"]]
  np.testing.assert_allclose(snv.delta, ism.delta.head(3), rtol=1e-3, atol=1e-6)
  assert effects["mask"].between(0, 1).all()


def _one_line(capsys, argv) -> str:
  assert cli.main(argv) == 2
  lines = capsys.readouterr().err.splitlines()
  assert len(lines) == 1, lines
  return lines[0]


def test_bad_vcfs_and_options_are_refused_in_one_line(setup, tmp_path, capsys):
  ds, model, gene = setup
  chrom, i = gene["chrom"], 600
  header = ("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
  good = f"{chrom}\t{gene['start'] + i + 1}\t.\t{_base(gene, i)}\tN\t.\t.\t.\n"
  wrong = "A" if _base(gene, i) != "A" else "C"
  table = tmp_path / "effects.tsv"
  base = ["score-variants", *model, "--data", str(ds), "--out", str(table)]
  for body, message in [
      (good.replace(f"\t{_base(gene, i)}\tN", f"\t{wrong}\tN"),
       f"line 4: REF {wrong} at {chrom}:{gene['start'] + i + 1} does not match the data "
       f"set's sequence there, {_base(gene, i)} (window of {gene['ensid']})"),
      ("chrUn\t5\t.\tA\tT\t.\t.\t.\n", "line 4: chromosome 'chrUn' is not in the data set"),
      (f"{chrom}\t5\t.\tA\n", "line 4: not a valid VCF record")]:
    vcf = tmp_path / "bad.vcf"
    vcf.write_text(header + good + body)
    line = _one_line(capsys, [*base, "--vcf", str(vcf)])
    assert line.startswith(f"seq2exp score-variants: {vcf}: {message}"), line
    assert not table.exists()
  out = tmp_path / "attr"
  attribute = ["attribute", *model, "--data", str(ds), "--out", str(out)]
  assert _one_line(capsys, [*attribute, "--genes", "ENSG_NOPE"]) == (
      f"seq2exp attribute: --genes: ENSG_NOPE not in the test split of {ds}")
  assert "chromosome 'chrUn' is not in the data set" in _one_line(
      capsys, [*attribute, "--ism", "chrUn:5-10"])
  assert f"in no selected gene's window of the test split" in _one_line(
      capsys, [*attribute, "--ism", f"{chrom}:{gene['start'] - 100}-{gene['start'] - 90}"])
  assert not out.exists()
