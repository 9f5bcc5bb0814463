"""The `seq2exp` commands of the model core: verify-reference and convert-torch."""

import json
import re
import shutil

import jax
import numpy as np
import pytest
from flax import serialization

from seq2exp_jax import cli
from seq2exp_jax.torch_port import reference as ref

CASES = ["a_mamba", "b_bimamba", "c_caduceus", "d_seq2exp_soft", "f_geneexp_bimamba"]


@pytest.mark.parametrize("name", CASES)
def test_verify_reference_passes_on_every_golden(data_dir, name, capsys):
  assert cli.main(["verify-reference", str(data_dir / f"{name}.npz")]) == 0
  out = capsys.readouterr().out
  case = ref.GoldenCase.load(data_dir / f"{name}.npz")
  matched = int(re.search(r"(\d+)/\1 outputs match", out).group(1))
  # Every output, and every intermediate the port also forms, is compared.
  assert len(case.outputs) < matched <= len(case.expected())
  assert "FAIL" not in out


def test_verify_reference_fails_on_a_corrupted_intermediate(data_dir, tmp_path, capsys):
  def corrupt(a):
    a["inter/generator_out"] = a["inter/generator_out"] * 1.01
  path = _copy_with(data_dir, tmp_path, "d_seq2exp_soft", corrupt)
  assert cli.main(["verify-reference", str(path)]) == 1
  assert "inter/generator_out" in capsys.readouterr().out.split("FAIL")[0].splitlines()[-1]


def _copy_with(data_dir, tmp_path, name, change):
  with np.load(data_dir / f"{name}.npz") as f:
    arrays = {k: f[k] for k in f.files}
  change(arrays)
  np.savez(tmp_path / f"{name}.npz", **arrays)
  shutil.copy(data_dir / f"{name}.json", tmp_path / f"{name}.json")
  return tmp_path / f"{name}.npz"


def test_verify_reference_fails_on_a_corrupted_output(data_dir, tmp_path, capsys):
  def corrupt(a):
    a["output/prediction"] = a["output/prediction"] + 1e-3
  path = _copy_with(data_dir, tmp_path, "d_seq2exp_soft", corrupt)
  assert cli.main(["verify-reference", str(path)]) == 1
  assert "prediction" in capsys.readouterr().out.split("FAIL")[0].splitlines()[-1]


def test_verify_reference_fails_on_a_corrupted_weight(data_dir, tmp_path):
  def corrupt(a):
    a["param/out_proj.weight"] = a["param/out_proj.weight"] * 1.01
  assert cli.main(["verify-reference", str(_copy_with(data_dir, tmp_path, "a_mamba",
                                                       corrupt))]) == 1


def test_verify_reference_fails_on_an_output_we_do_not_make(data_dir, tmp_path, capsys):
  def extra(a):
    a["output/something_else"] = np.zeros(3, np.float32)
  assert cli.main(["verify-reference", str(_copy_with(data_dir, tmp_path, "b_bimamba",
                                                       extra))]) == 1
  assert "missing from our outputs" in capsys.readouterr().out


def test_verify_reference_fails_on_a_wrong_shape(data_dir, tmp_path, capsys):
  def reshape(a):
    a["output/out"] = a["output/out"][:, :10]
  assert cli.main(["verify-reference", str(_copy_with(data_dir, tmp_path, "a_mamba",
                                                       reshape))]) == 1
  assert "shape" in capsys.readouterr().out


def test_verify_reference_names_a_missing_file(tmp_path, capsys):
  assert cli.main(["verify-reference", str(tmp_path / "nope.npz")]) == 2  # bad input
  assert capsys.readouterr().err == (
      f"seq2exp verify-reference: {tmp_path / 'nope.npz'}: no such file\n")


def test_convert_torch_writes_params_that_reproduce_the_reference(data_dir, tmp_path):
  out = tmp_path / "params.msgpack"
  assert cli.main(["convert-torch", str(data_dir / "f_geneexp_bimamba.npz"), "--config",
                   str(data_dir / "f_geneexp_bimamba.json"), "--out", str(out)]) == 0
  case = ref.GoldenCase.load(data_dir / "f_geneexp_bimamba.npz")
  model = ref.model_from_config(case.config)
  target = jax.eval_shape(lambda: ref.init_params(model, ref.example_inputs(model, 2, 2000)))
  params = serialization.from_bytes(target, out.read_bytes())
  pred = ref.forward(model, params, case.inputs)["prediction"]
  np.testing.assert_allclose(pred, case.outputs["prediction"], rtol=1e-4, atol=1e-5)


def test_convert_torch_refuses_a_mismatched_config(data_dir, tmp_path, capsys):
  config = json.loads((data_dir / "c_caduceus.json").read_text())
  config["caduceus_config"]["n_layer"] = 3
  (tmp_path / "c.json").write_text(json.dumps(config))
  out = tmp_path / "params.msgpack"
  assert cli.main(["convert-torch", str(data_dir / "c_caduceus.npz"), "--config",
                   str(tmp_path / "c.json"), "--out", str(out)]) == 2
  err = capsys.readouterr().err
  assert "layers/norm/scale: shape (2, 32), expected (3, 32)" in err and not out.exists()


def _hard_variant_file(data_dir, tmp_path):
  """A file in the golden format for the Seq2Exp-hard configuration (shared generator and
  encoder, position embedding, hard mask, packed predictor input), built from case d's
  weights. Its outputs are our model's own, so this checks the import and comparison path
  of the hard variant (tied encoder copies, pos_emb layout, batch-maximum packing), not the
  numerics against PyTorch, which no shared golden covers."""
  config = json.loads((data_dir / "d_seq2exp_soft.json").read_text())
  config["caduceus_config"].update(
      enc_prd_ps=True, pos_enc=True, test_hard=True, test_soft=False, post_hard_dist=True,
      beta_min=0, prior_scale_factor=1.0, marginal_mean=0.45, marginal_scale=0.1)
  with np.load(data_dir / "d_seq2exp_soft.npz") as f:
    arrays = {k: f[k] for k in f.files if k.startswith(("param/", "input/"))}
  for key in [k for k in arrays if k.startswith("param/generator.")]:
    arrays[key.replace("param/generator.", "param/encoder.")] = arrays[key]
  length = arrays["input/seqs"].shape[1]
  arrays["param/pos_emb"] = np.random.default_rng(0).normal(
      0, 0.1, (1, length, 32)).astype(np.float32)
  case = ref.GoldenCase(config, {k[6:]: v for k, v in arrays.items() if k.startswith("param/")},
                        {k[6:]: v for k, v in arrays.items() if k.startswith("input/")}, {}, {})
  model = ref.model_from_config(config)
  params = ref.flax_params(model, case.params, "hard")
  for key, value in ref.forward(model, params, case.inputs).items():
    arrays[f"output/{key}"] = np.asarray(value)
  np.savez(tmp_path / "hard.npz", **arrays)
  (tmp_path / "hard.json").write_text(json.dumps(config))
  return tmp_path / "hard.npz", arrays


def test_verify_reference_runs_the_hard_variant(data_dir, tmp_path, capsys):
  path, arrays = _hard_variant_file(data_dir, tmp_path)
  mask = arrays["output/mask"]
  assert set(np.unique(mask)) == {0.0, 1.0} and 0 < mask.mean() < 1
  assert cli.main(["verify-reference", str(path)]) == 0
  assert "seq2exp (Seq2Exp)" in capsys.readouterr().out
  # An encoder copy that differs from the generator cannot be a shared-weights model.
  arrays["param/encoder.backbone.norm_f.weight"] = arrays["param/encoder.backbone.norm_f.weight"] + 1.0
  np.savez(path, **arrays)
  assert cli.main(["verify-reference", str(path)]) == 2
  assert "tied copies" in capsys.readouterr().err
