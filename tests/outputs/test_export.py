"""Export to a single artifact and serve it with `serving.py` alone (no model code)."""

from __future__ import annotations

import functools
import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import seq2exp_jax
from seq2exp_jax.outputs import export as export_lib
from seq2exp_jax.outputs import serving
from seq2exp_jax.model.baselines import GeneExpModel
from seq2exp_jax.outputs.export import export_predictor, flatten_params
from seq2exp_jax.model.seq2exp import Seq2Exp
from seq2exp_jax.model.ssm_config import SSMConfig

LENGTH = 64
SERVING_PY = pathlib.Path(seq2exp_jax.__file__).parent / "outputs" / "serving.py"
SMALL = dict(backbone=SSMConfig(d_model=16), center_len=8)


def _inputs(batch: int, seed: int) -> dict[str, np.ndarray]:
  """dna (B, L, 4) one-hot, signals (B, L, 3), blacklist (B, L) bool, rna_feat (B, 9)."""
  rng = np.random.default_rng(seed)
  dna = np.eye(5, 4, dtype=np.float32)[rng.integers(0, 5, (batch, LENGTH))]  # 4 -> N row
  return {"dna": dna, "signals": rng.gamma(0.5, size=(batch, LENGTH, 3)).astype(np.float32),
          "blacklist": rng.uniform(size=(batch, LENGTH)) < 0.1,
          "rna_feat": rng.normal(size=(batch, 9)).astype(np.float32)}


@functools.cache
def _baseline():
  model = GeneExpModel(use_signals=True, n_layer=1, **SMALL)
  x = {k: jnp.asarray(v) for k, v in _inputs(2, 0).items()}  # in call order
  params = model.init(jax.random.PRNGKey(0), x["dna"], x["signals"], x["rna_feat"])["params"]

  def apply_fn(p, inputs):
    return {"prediction": model.apply({"params": p}, inputs["dna"], inputs["signals"],
                                      inputs["rna_feat"]).prediction}
  names = ("dna", "signals", "rna_feat")
  return apply_fn, params, {n: x[n] for n in names}, ("prediction",)


@functools.cache
def _seq2exp():
  model = Seq2Exp(n_gen_layer=1, n_enc_layer=1, **SMALL)
  x = {k: jnp.asarray(v) for k, v in _inputs(2, 0).items()}  # in call order
  params = model.init(jax.random.PRNGKey(1), x["dna"], x["signals"], x["rna_feat"],
                      x["blacklist"])["params"]

  def apply_fn(p, inputs):
    out = model.apply({"params": p}, inputs["dna"], inputs["signals"], inputs["rna_feat"],
                      inputs["blacklist"])
    return {"prediction": out.prediction, "mask": out.mask}
  return apply_fn, params, x, ("prediction", "mask")


# Imports serving.py by file path in a fresh interpreter, runs it on the given input files
# and checks that neither the model package nor flax was imported along the way.
_RUNNER = textwrap.dedent("""
    import importlib.util, sys
    import numpy as np
    spec = importlib.util.spec_from_file_location("serving", sys.argv[1])
    serving = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(serving)
    predictor = serving.ExportedPredictor.load(sys.argv[2])
    for path in sys.argv[3:]:
      with np.load(path) as z:
        np.savez(f"{path}.out.npz", **predictor(dict(z.items())))
    leaked = [m for m in sys.modules if m.split(".")[0] in ("seq2exp_jax", "flax")]
    assert not leaked, leaked
    print("OK", predictor.metadata["model"])
""")


@pytest.mark.parametrize("build", [_baseline, _seq2exp], ids=["caduceus", "seq2exp"])
def test_served_predictions_match_model_at_two_batch_sizes(build, tmp_path):
  apply_fn, params, example, outputs = build()
  metadata = {"model": build.__name__, "config": {"d_model": 16, "center_len": 8}, "step": 123}
  artifact = export_predictor(apply_fn, params, example, tmp_path / "model.s2x",
                              outputs=outputs, metadata=metadata)
  with zipfile.ZipFile(artifact) as zf:
    manifest = json.loads(zf.read("manifest.json"))
  assert manifest["inputs"][0]["shape"] == [None, LENGTH, 4]
  assert [i["name"] for i in manifest["inputs"]] == list(example)
  assert [o["name"] for o in manifest["outputs"]] == list(outputs)
  assert manifest["outputs"][0]["shape"] == [None]  # prediction (B,), as the docs say
  assert manifest["metadata"] == metadata and manifest["platforms"] == ["cpu"]

  # The loader is copied next to the artifact, away from the package.
  shutil.copy(SERVING_PY, tmp_path / "serving.py")
  batches = {1: _inputs(1, 10), 3: _inputs(3, 11)}
  paths = []
  for b, x in batches.items():
    paths.append(tmp_path / f"in{b}.npz")
    np.savez(paths[-1], **{n: x[n] for n in example})
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  proc = subprocess.run([sys.executable, "-c", _RUNNER, str(tmp_path / "serving.py"),
                         str(artifact), *map(str, paths)], cwd=tmp_path, env=env,
                        capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert f"OK {build.__name__}" in proc.stdout

  for (b, x), path in zip(batches.items(), paths):
    expected = jax.jit(apply_fn)(params, {n: x[n] for n in example})
    with np.load(f"{path}.out.npz") as got:
      assert sorted(got.files) == sorted(outputs)
      for name in outputs:
        assert got[name].shape == expected[name].shape and got[name].shape[0] == b
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-6, atol=1e-6)


@pytest.fixture(scope="module")
def baseline_artifact(tmp_path_factory):
  apply_fn, params, example, outputs = _baseline()
  path = tmp_path_factory.mktemp("export") / "baseline.s2x"
  export_predictor(apply_fn, params, example, path, outputs=outputs, metadata={"step": 7})
  return path, params


def test_cli_script_and_in_process_loader(baseline_artifact, tmp_path):
  path, params = baseline_artifact
  x = _inputs(2, 5)
  inputs = {n: x[n] for n in ("dna", "signals", "rna_feat")}
  np.savez(tmp_path / "in.npz", **inputs)
  proc = subprocess.run([sys.executable, str(SERVING_PY), str(path), str(tmp_path / "in.npz"),
                         str(tmp_path / "out.npz")], capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr[-3000:]
  predictor = serving.ExportedPredictor.load(path)
  assert predictor.metadata == {"step": 7}
  assert predictor.input_specs["signals"] == ((None, LENGTH, 3), np.dtype("float32"))
  # float64 inputs are cast to the exported float32.
  direct = predictor({n: v.astype(np.float64) for n, v in inputs.items()})
  with np.load(tmp_path / "out.npz") as out:
    np.testing.assert_array_equal(out["prediction"], direct["prediction"])
  assert direct["prediction"].shape == (2,) and direct["prediction"].dtype == np.float32
  flat = flatten_params(params)
  assert flat and all("/" in k for k in flat)


def test_bad_inputs_raise_clear_errors(baseline_artifact):
  predictor = serving.ExportedPredictor.load(baseline_artifact[0])
  x = _inputs(2, 6)
  good = {n: x[n] for n in ("dna", "signals", "rna_feat")}
  with pytest.raises(ValueError, match=r"missing \['rna_feat'\]"):
    predictor({k: v for k, v in good.items() if k != "rna_feat"})
  with pytest.raises(ValueError, match=r"unknown \['blacklist'\]"):
    predictor(dict(good, blacklist=x["blacklist"]))
  with pytest.raises(ValueError, match=r"input 'signals' has shape \(2, 64, 2\), expected "
                                       r"\(B, 64, 3\)"):
    predictor(dict(good, signals=x["signals"][..., :2]))
  with pytest.raises(ValueError, match="all inputs must share the batch"):
    predictor(dict(good, rna_feat=x["rna_feat"][:1]))


def _rewrite(src: pathlib.Path, dst: pathlib.Path, manifest: bytes | None) -> pathlib.Path:
  """Copies the artifact, replacing (bytes) or dropping (None) its manifest."""
  with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
    for name in zin.namelist():
      if name != "manifest.json":
        zout.writestr(name, zin.read(name))
    if manifest is not None:
      zout.writestr("manifest.json", manifest)
  return dst


def test_bad_artifacts_raise_clear_errors(baseline_artifact, tmp_path):
  src = baseline_artifact[0]
  with zipfile.ZipFile(src) as zf:
    manifest = json.loads(zf.read("manifest.json"))
  load = serving.ExportedPredictor.load
  with pytest.raises(ValueError, match=r"missing member\(s\) \['manifest.json'\]"):
    load(_rewrite(src, tmp_path / "a.s2x", None))
  with pytest.raises(ValueError, match="manifest.json is not valid JSON"):
    load(_rewrite(src, tmp_path / "b.s2x", b'{"format": '))
  with pytest.raises(ValueError, match="'format_version' is 99"):
    load(_rewrite(src, tmp_path / "c.s2x", json.dumps(dict(manifest, format_version=99))
                  .encode()))
  renamed = dict(manifest, inputs=[dict(manifest["inputs"][0], name="sequence")]
                 + manifest["inputs"][1:])
  with pytest.raises(ValueError, match="do not match the exported function's arguments"):
    load(_rewrite(src, tmp_path / "d.s2x", json.dumps(renamed).encode()))
  (tmp_path / "e.s2x").write_bytes(b"not a zip")
  with pytest.raises(ValueError, match="not a readable export artifact"):
    load(tmp_path / "e.s2x")


def test_failed_export_writes_nothing_and_keeps_existing_artifact(baseline_artifact,
                                                                  tmp_path, monkeypatch):
  apply_fn, params, example, outputs = _baseline()
  out = tmp_path / "model.s2x"
  with pytest.raises(ValueError, match="metadata must be JSON-serializable"):
    export_predictor(apply_fn, params, example, out, outputs=outputs,
                     metadata={"array": np.zeros(2)})
  assert list(tmp_path.iterdir()) == []

  shutil.copy(baseline_artifact[0], out)
  before = out.read_bytes()
  with pytest.raises(ValueError, match="metadata must be JSON-serializable"):
    export_predictor(apply_fn, params, example, out, outputs=outputs,
                     metadata={"loss": float("nan")})
  with pytest.raises(KeyError, match=r"outputs \['mask'\] are not in apply_fn's result"):
    export_predictor(apply_fn, params, example, out, outputs=("prediction", "mask"))
  with pytest.raises(ValueError, match="platforms"):
    export_predictor(apply_fn, params, example, out, outputs=outputs, platforms=("gpu",))

  def disk_full(fd):
    raise OSError(28, "No space left on device")
  monkeypatch.setattr(export_lib.os, "fsync", disk_full)  # fails after the zip is written
  with pytest.raises(OSError, match="No space left"):
    export_predictor(apply_fn, params, example, out, outputs=outputs)
  assert out.read_bytes() == before
  assert sorted(p.name for p in tmp_path.iterdir()) == ["model.s2x"]  # no temp files left


def test_multi_platform_export_runs_on_cpu(tmp_path):
  apply_fn, params, example, outputs = _baseline()
  path = export_predictor(apply_fn, params, example, tmp_path / "m.s2x", outputs=outputs,
                          platforms=("cpu", "cuda"))
  predictor = serving.ExportedPredictor.load(path)
  assert predictor.manifest["platforms"] == ["cpu", "cuda"]
  x = {n: v[:1] for n, v in example.items()}
  expected = jax.jit(apply_fn)(params, x)["prediction"]
  np.testing.assert_allclose(predictor(x)["prediction"], expected, rtol=1e-6, atol=1e-6)
