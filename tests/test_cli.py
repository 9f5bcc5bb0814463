"""The `seq2exp` commands of the model core: verify-reference and convert-torch."""

import json
import shutil

import jax
import numpy as np
import pytest
from flax import serialization

from seq2exp_jax import cli
from seq2exp_jax import reference as ref
CASES = ["a_mamba", "b_bimamba", "c_caduceus", "d_seq2exp_soft", "f_geneexp_bimamba"]


@pytest.mark.parametrize("name", CASES)
def test_verify_reference_passes_on_every_golden(data_dir, name, capsys):
  assert cli.main(["verify-reference", str(data_dir / f"{name}.npz")]) == 0
  out = capsys.readouterr().out
  case = ref.GoldenCase.load(data_dir / f"{name}.npz")
  assert f"{len(case.outputs)}/{len(case.outputs)} outputs match" in out


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
  assert cli.main(["verify-reference", str(tmp_path / "nope.npz")]) == 1
  assert "nope.npz: no such file" in capsys.readouterr().err


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
                   str(tmp_path / "c.json"), "--out", str(out)]) == 1
  err = capsys.readouterr().err
  assert "layers/norm/scale: shape (2, 32), expected (3, 32)" in err and not out.exists()
