"""Params from outside a run (seq2exp_jax/commands/params_source.py,
seq2exp_jax/train/init_params.py): the original's golden weights, converted or read
directly, reproduce the golden predictions through `predict`, `eval` and `export` on a
prepared data set holding the golden inputs; `train --init-from` starts at step 0 from given
params (and resuming wins); params that do not fit the config, a missing file and a file
that is not msgpack are refused in one line."""

from __future__ import annotations

import csv
import json

import jax
import numpy as np
import pyBigWig
import pytest
import tensorflow_datasets as tfds
from flax import serialization

from conftest import REPO
from conftest_data import tiny_synthetic
from data_pipeline import io, tfds_builder
from seq2exp_jax import cli
from seq2exp_jax.config import loader as configs
from seq2exp_jax.outputs import genome_tracks as tracks
from seq2exp_jax.outputs.serving import ExportedPredictor
from seq2exp_jax.torch_port import reference as ref
from seq2exp_jax.train import checkpoint, init_params, trainer
from seq2exp_jax.train.task import build_task
from test_errors import one_line

EXP = REPO / "experiments"
GOLDEN_WINDOW = 6000
# The golden models (tests/data/*.json: d_model 32, 2 + 2 or 2 layers, d_state 16, a 2 kb
# promoter) as smoke configs with overrides; the window is the golden one.
SHAPE = ["--config.model.backbone.d_model=32", "--config.model.backbone.d_state=16",
         "--config.model.center_len=2000", f"--config.data.window={GOLDEN_WINDOW}"]
CONFIGS = {
    "d_seq2exp_soft": [f"--config={EXP}/seq2exp_soft.py:smoke", *SHAPE,
                       "--config.model.n_gen_layer=2", "--config.model.n_enc_layer=2"],
    "f_geneexp_bimamba": [f"--config={EXP}/caduceus_signals.py:smoke", *SHAPE,
                          "--config.model.n_layer=2"],
}
CHROM_LENGTH = 100_000


class GoldenGenes(tfds_builder.GeneExp, skip_registration=True):
  """The prepared data set's format holding a golden file's inputs as its test split."""

  def __init__(self, *, case: ref.GoldenCase, **kwargs):
    self._case = case
    super().__init__(**kwargs)

  def _split_generators(self, dl_manager):
    del dl_manager
    self.info.metadata[io.CHROM_LENGTHS_KEY] = {"chr1": CHROM_LENGTH, "chr2": CHROM_LENGTH}
    return {"test": self._golden_examples()}

  def _golden_examples(self):
    x = self._case.inputs
    regions = x.get("mask_regions", np.zeros(x["seqs"].shape[:2] + (2,), bool))
    for i, seqs in enumerate(x["seqs"]):
      dna = np.where(seqs.sum(-1) == 0, 4, seqs.argmax(-1)).astype(np.uint8)
      yield f"G{i}", {
          "dna": dna, "signals": x["signals"][i], "includelist": regions[i, :, 0],
          "blacklist": regions[i, :, 1], "peaks": np.zeros(len(dna), bool),
          "rna_feat": x["rna_feat"][i], "target": x["target"][i, 0], "ensid": f"G{i}",
          "chrom": f"chr{i + 1}", "tss": CHROM_LENGTH // 2}


@pytest.fixture(scope="module")
def goldens(data_dir, tmp_path_factory):
  """name -> (case, prepared data set dir, converted msgpack) of a golden file, each made
  once."""
  made = {}

  def make(name):
    if name not in made:
      case = ref.GoldenCase.load(data_dir / f"{name}.npz")
      base = tmp_path_factory.mktemp(name)
      builder = GoldenGenes(case=case, data_dir=base / "tfds",
                            config=tfds_builder.make_config("K562", GOLDEN_WINDOW,
                                                              with_elements=False))
      builder.download_and_prepare(download_config=tfds_builder.DOWNLOAD_CONFIG)
      msgpack = base / "params.msgpack"
      assert cli.main(["convert-torch", str(data_dir / f"{name}.npz"), "--config",
                       str(data_dir / f"{name}.json"), "--out", str(msgpack)]) == 0
      made[name] = case, str(builder.data_dir), msgpack
    return made[name]
  return make


def assert_matches(name: str, got, want) -> None:
  result = ref.compare(name, got, want)  # test_golden's tolerances (rtol 1e-4, atol 1e-5)
  assert result["ok"], result


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_predict_with_converted_golden_weights_reproduces_the_golden_outputs(
    goldens, name, tmp_path):
  case, ds, msgpack = goldens(name)
  out = tmp_path / "pred"
  assert cli.main(["predict", "--params", str(msgpack), *CONFIGS[name], "--data", ds,
                   "--out", str(out)]) == 0
  with open(out / "predictions.csv", newline="") as f:
    rows = list(csv.DictReader(f))
  assert [r["ensid"] for r in rows] == ["G0", "G1"]
  assert_matches("prediction", [float(r["prediction"]) for r in rows],
                 case.outputs["prediction"][:, 0])
  metrics = json.loads((out / "metrics.json").read_text())
  assert metrics["params"] == {"path": str(msgpack), "kind": "msgpack"}
  if "mask" in case.outputs:  # Seq2Exp-soft: the mask in genome coordinates too
    bw = pyBigWig.open(str(out / "mask.bw"))
    start = tracks.window_start(CHROM_LENGTH // 2, GOLDEN_WINDOW)
    masks = [bw.values(f"chr{i + 1}", start, start + GOLDEN_WINDOW) for i in range(2)]
    bw.close()
    assert_matches("mask", masks, case.outputs["mask"])


def test_eval_reads_the_original_checkpoint_directly(goldens, data_dir, tmp_path):
  name = "f_geneexp_bimamba"  # the .npz of the original's weights, without convert-torch
  case, ds, _ = goldens(name)
  out = tmp_path / "eval.json"
  npz = data_dir / f"{name}.npz"
  assert cli.main(["eval", "--params", str(npz), "--torch-config",
                   str(data_dir / f"{name}.json"), *CONFIGS[name], "--data", ds,
                   "--out", str(out)]) == 0
  result = json.loads(out.read_text())
  error = case.outputs["prediction"][:, 0] - case.inputs["target"][:, 0]
  assert result["n"] == 2 and result["params"]["kind"] == "torch"
  assert result["mse"] == pytest.approx(np.mean(error ** 2), rel=1e-4, abs=1e-6)
  assert result["mae"] == pytest.approx(np.mean(np.abs(error)), rel=1e-4, abs=1e-6)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["eval.json"]


def test_export_with_params_serves_the_golden_outputs(goldens, tmp_path):
  name = "d_seq2exp_soft"  # the prediction and the mask
  case, _, msgpack = goldens(name)
  artifact = tmp_path / "soft.s2x"
  assert cli.main(["export", "--params", str(msgpack), *CONFIGS[name],
                   "--out", str(artifact)]) == 0
  served = ExportedPredictor.load(artifact)
  assert served.manifest["metadata"]["params"]["kind"] == "msgpack"
  x = case.inputs
  got = served({"dna": x["seqs"], "signals": x["signals"], "rna_feat": x["rna_feat"],
                "blacklist": x["mask_regions"][..., 1]})
  assert_matches("prediction", got["prediction"], case.outputs["prediction"][:, 0])
  assert_matches("mask", got["mask"], case.outputs["mask"])


# ------------------------------------------------------------------ refusals, one line


@pytest.fixture(scope="module")
def soft_golden(goldens):
  """(converted Seq2Exp-soft golden msgpack, its dir)."""
  msgpack = goldens("d_seq2exp_soft")[2]
  return msgpack, msgpack.parent


@pytest.mark.parametrize("override,path,found,expected,hint", [
    ("--config.model.n_gen_layer=1", "generator/layers/mixer/in_proj/kernel", "(2, 32, 128)",
     "(1, 32, 128)", "another depth (model.n_gen_layer, n_enc_layer or n_layer?)"),
    ("--config.model.backbone.d_model=16", "encoder/layers/mixer/in_proj/kernel",
     "(2, 32, 128)", "(2, 16, 64)", "another width (model.backbone.d_model, d_state or expand?)")])
def test_params_of_another_model_are_refused_naming_the_path(soft_golden, capsys, override,
                                                             path, found, expected, hint):
  msgpack, base = soft_golden
  args = [a for a in CONFIGS["d_seq2exp_soft"] if not a.startswith(override.split("=")[0])]
  message = one_line(capsys, "export", ["--params", str(msgpack), *args, override,
                                        "--out", str(base / "x.s2x")])
  assert message.startswith(f"{msgpack}: param ")
  assert f"param {path} has shape {found}, the config's model expects {expected}" in message
  assert message.endswith(f": the params were made for {hint}")
  assert not (base / "x.s2x").exists()


def test_unreadable_params_are_refused(soft_golden, data_dir, tmp_path, capsys):
  msgpack, _ = soft_golden
  soft = CONFIGS["d_seq2exp_soft"]
  out = ["--out", str(tmp_path / "x.s2x")]
  missing = tmp_path / "nope.msgpack"
  assert one_line(capsys, "export", ["--params", str(missing), *soft, *out]).startswith(
      f"{missing}: no such file")
  text = tmp_path / "notes.msgpack"
  text.write_text("these are not params\n")
  assert one_line(capsys, "export", ["--params", str(text), *soft, *out]).startswith(
      f"{text}: not a Flax msgpack of params")
  number = tmp_path / "number.msgpack"
  number.write_bytes(serialization.msgpack_serialize(7))
  assert "not a tree of float arrays" in one_line(
      capsys, "export", ["--params", str(number), *soft, *out])
  npz = str(data_dir / "d_seq2exp_soft.npz")
  assert "needs --torch-config CONFIG.json" in one_line(
      capsys, "export", ["--params", npz, *soft, *out])
  # The original's config and ours must compute alike, not only have the same shapes.
  message = one_line(capsys, "export", [
      "--params", npz, "--torch-config", str(data_dir / "d_seq2exp_soft.json"), *soft,
      "--config.model.bottleneck.prior_scale_factor=1.0", *out])
  assert "compute differently: bottleneck.prior_scale_factor: ours 1.0, theirs 10.0" \
      in message
  assert "needs --config" in one_line(capsys, "export", ["--params", str(msgpack), *out])
  assert "go with --params" in one_line(
      capsys, "export", ["--workdir", str(tmp_path), *soft, *out])
  assert one_line(capsys, "eval", ["--workdir", str(tmp_path), "--out", str(tmp_path / "e")]
                  ).startswith("--out: go with --params")
  assert "exists and is not an earlier `seq2exp eval` result" in one_line(  # kept as it is
      capsys, "eval", ["--params", str(msgpack), *soft, "--out", str(text)])
  assert text.read_text() == "these are not params\n"
  assert not (tmp_path / "x.s2x").exists()


# ------------------------------------------------- train --init-from, on the tiny data set


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  return str(tiny_synthetic(tmp_path_factory.getbasetemp())[1])


SOFT_SMOKE = str(EXP / "seq2exp_soft.py:smoke")
# The optimizer moves nothing (clipped to norm 0, no decay): a step's params are its start.
FROZEN = ["--config.optim.grad_clip=0", "--config.optim.weight_decay=0"]


def test_train_init_from_starts_at_step_0_from_the_params_and_resuming_wins(
    tiny, tmp_path, capsys, monkeypatch):
  config = configs.load_config(SOFT_SMOKE)
  shapes = init_params.expected_params(build_task(config), config.data.window)
  rng = np.random.default_rng(7)  # not what a random init would draw
  params = jax.tree.map(lambda s: (rng.normal(size=s.shape) * 0.1).astype(s.dtype), shapes)
  given = tmp_path / "start.msgpack"
  given.write_bytes(serialization.msgpack_serialize(params))
  workdir = tmp_path / "run"
  base = ["train", "--config", SOFT_SMOKE, "--workdir", str(workdir),
          f"--config.data.dir={tiny}", *FROZEN]
  assert cli.main([*base, "--config.train.steps=1", "--init-from", str(given)]) == 0
  _, trained, step = checkpoint.load_run(workdir, "latest")
  assert step == 1
  assert all(jax.tree.leaves(jax.tree.map(np.array_equal, trained, params)))
  init = json.loads((workdir / "init.json").read_text())
  assert init == {"path": str(given), "kind": "msgpack", "step": 0}

  # The workdir has a checkpoint: the trainer resumes (tests/train/test_trainer.py) and is
  # given no init; --init-from is not even read.
  calls = []
  monkeypatch.setattr(trainer, "train_and_evaluate",
                      lambda *a, **k: calls.append(k) or {"step": 1})
  capsys.readouterr()
  assert cli.main([*base, "--config.train.steps=2", "--init-from",
                   str(tmp_path / "absent.msgpack")]) == 0
  assert "has a checkpoint: resuming from it" in capsys.readouterr().err
  assert calls == [{"restart": False, "init": None}]
  monkeypatch.undo()

  # Another workdir's best params, under --params: the metrics its training validation
  # measured with them.
  assert cli.main(["eval", "--params", str(workdir), "--config", SOFT_SMOKE, "--data", tiny,
                   "--split", "valid", "--out", str(tmp_path / "e.json")]) == 0
  by_params = json.loads((tmp_path / "e.json").read_text())
  best = json.loads((workdir / "best.json").read_text())
  assert by_params["params"] == {"path": str(workdir), "kind": "workdir", "checkpoint": "best",
                                 "step": 1, "experiment": "seq2exp_soft"}
  assert best["step"] == 1 and by_params["mse"] == pytest.approx(best["mse"], rel=1e-6)


def test_train_refuses_params_that_do_not_fit_before_claiming_the_workdir(
    tiny, soft_golden, tmp_path, capsys):
  msgpack, _ = soft_golden
  workdir = tmp_path / "run"
  message = one_line(capsys, "train", ["--config", SOFT_SMOKE, "--workdir", str(workdir),
                                       f"--config.data.dir={tiny}", "--init-from",
                                       str(msgpack)])
  assert message.startswith(f"{msgpack}: param ") and "the config's model expects" in message
  assert not (workdir / "config.json").exists()


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_golden_data_set_reads_back_the_golden_inputs(goldens, name):
  """The data set the tests above read holds the golden inputs exactly."""
  case, ds, _ = goldens(name)
  source = tfds.builder_from_directory(ds).as_data_source()["test"]
  first = source[0]
  np.testing.assert_array_equal(first["signals"], case.inputs["signals"][0])
  np.testing.assert_array_equal(np.eye(5, 4, dtype=np.float32)[first["dna"]],
                                case.inputs["seqs"][0])
