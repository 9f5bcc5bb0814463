"""The main job end to end on the tiny synthetic data set, 8 simulated CPU devices: one
step of every config's smoke variant, resume after SIGKILL, 1 vs 8 devices, NaN stops,
checkpoints of another model refused, eval / predict / export / ablate outputs."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pyBigWig
import pytest

from conftest_data import export_and_reload, tiny_synthetic
from data_pipeline.batch import Batch
from data_pipeline.io import read_chrom_lengths
from seq2exp_jax.train import checkpoint
from seq2exp_jax import cli
from seq2exp_jax.config import loader as configs
from seq2exp_jax.outputs import genome_tracks as tracks
from seq2exp_jax.train.metric_writer import read_metrics
from seq2exp_jax.outputs.serving import ExportedPredictor
from seq2exp_jax.train.trainer import NonFiniteError, train_and_evaluate

REPO = pathlib.Path(__file__).parents[2]
NAMES = ["seq2exp_soft", "seq2exp_hard", "caduceus", "caduceus_signals", "mamba", "hyena",
         "macs3_mask", "seq2exp_retrain_top10", "epinformer", "enformer", "prism"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
  return str(tiny_synthetic(tmp_path_factory.getbasetemp())[1])


def smoke(name, data, **train):
  c = configs.load_config(str(REPO / "experiments" / f"{name}.py:smoke"))
  c.data.dir = data
  c.train.update(train)
  return c


@pytest.fixture(scope="module")
def soft_run(data, tmp_path_factory):
  """A finished seq2exp_soft smoke run (4 steps, validated at 2 and 4)."""
  workdir = tmp_path_factory.mktemp("soft")
  result = train_and_evaluate(smoke("seq2exp_soft", data, eval_every=2), workdir)
  return workdir, result


@pytest.mark.parametrize("name", NAMES)
def test_one_step_of_every_smoke_config(name, data, soft_run, tmp_path):
  c = smoke(name, data, steps=1, log_every=1, eval_every=1, checkpoint_every=1)
  if name == "seq2exp_retrain_top10":
    # The top fraction must reach past the promoter (forced to 1, so always on top).
    c.mask.update(generator_workdir=str(soft_run[0]), top_fraction=0.3)
  result = train_and_evaluate(c, tmp_path / "run")
  assert result["step"] == 1
  train = result["train"]
  assert np.isfinite(train["loss"]) and train["grad_norm"] > 0
  assert np.isfinite(result["valid"]["mse"])
  assert ("mask_ratio" in train) == (c.model.name == "seq2exp")
  assert checkpoint.manager(tmp_path / "run" / "checkpoints",
                            read_only=True).latest_step() == 1
  if name == "seq2exp_retrain_top10":
    _check_top10_export(tmp_path / "run", c.data.window, tmp_path / "top10.s2x")


def test_finished_run_has_everything(soft_run):
  workdir, result = soft_run
  assert result["step"] == 4 and result["best"]["step"] in (2, 4)
  rows = read_metrics(workdir, "train")
  assert [r["step"] for r in rows] == [2, 4]
  for key in ("loss", "huber", "kl", "grad_norm", "mask_ratio", "learning_rate",
              "examples_per_second"):
    assert key in rows[-1]
  assert [r["step"] for r in read_metrics(workdir, "valid")] == [2, 4]  # same genes twice
  assert read_metrics(workdir, "valid")[0]["n"] == read_metrics(workdir, "valid")[1]["n"]
  valid = read_metrics(workdir, "valid")[-1]
  assert {"mse", "mae", "pearson", "spearman", "auprc", "mask_ratio"} <= set(valid)
  best = json.loads((workdir / "best.json").read_text())
  assert best["mse"] == min(r["mse"] for r in read_metrics(workdir, "valid"))


def test_one_and_eight_devices_give_the_same_losses(data, tmp_path):
  """Replicated on 1 device, replicated on 8, and params sharded over 8 (ZeRO-3 style)."""
  devices = jax.devices()
  assert len(devices) == 8
  losses = {}
  for n, shard in ((1, False), (8, False), (8, True)):
    mesh = jax.sharding.Mesh(np.array(devices[:n]), ("data",),
                             axis_types=(jax.sharding.AxisType.Auto,))
    c = smoke("seq2exp_soft", data, steps=4, log_every=1, eval_every=100,
              checkpoint_every=100, shard_params=shard)
    workdir = tmp_path / f"dev{n}_{shard}"
    train_and_evaluate(c, workdir, mesh=mesh)
    losses[n, shard] = [r["loss"] for r in read_metrics(workdir, "train")]
  assert len(losses[1, False]) == 4
  np.testing.assert_allclose(losses[1, False], losses[8, False], rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(losses[1, False], losses[8, True], rtol=1e-5, atol=1e-5)


def test_sharded_params_are_split_over_devices():
  from seq2exp_jax.train.step import state_sharding  # pylint: disable=import-outside-toplevel
  mesh = jax.sharding.Mesh(np.array(jax.devices()), ("data",))
  tree = {"w": jax.ShapeDtypeStruct((16, 40), np.float32),
          "b": jax.ShapeDtypeStruct((3,), np.float32)}
  specs = state_sharding(tree, mesh, shard_params=True)
  assert specs["w"].spec == jax.sharding.PartitionSpec(None, "data")  # 40 % 8 == 0
  assert specs["b"].spec == jax.sharding.PartitionSpec()  # too small: replicated


def test_bfloat16_compute_keeps_float32_params(data, tmp_path):
  c = smoke("seq2exp_soft", data, steps=2, log_every=1, eval_every=2, checkpoint_every=2,
            dtype="bfloat16")
  result = train_and_evaluate(c, tmp_path)
  assert np.isfinite(result["train"]["loss"]) and np.isfinite(result["valid"]["mse"])
  _, params, _ = checkpoint.load_run(tmp_path, "latest")
  assert {x.dtype for x in jax.tree_util.tree_leaves(params)} == {np.dtype(np.float32)}
  # The backbones really compute in bf16 (their matmuls), the bottleneck in float32.
  from seq2exp_jax.train.task import build_task  # pylint: disable=import-outside-toplevel
  length = c.data.window
  batch = Batch.zeros(1, length, target=np.zeros((1,), np.float32))
  jaxpr = str(jax.make_jaxpr(lambda p: build_task(c).loss(p, batch, jax.random.PRNGKey(0)))(
      params))
  assert "dot_general" in jaxpr and "bf16" in jaxpr
  assert "preferred_element_type=bfloat16" in jaxpr or "bf16[1," in jaxpr


def _train_cmd(workdir, data, steps):
  return [sys.executable, "-m", "seq2exp_jax.cli", "train", "--config",
          str(REPO / "experiments" / "seq2exp_soft.py:smoke"), "--workdir", str(workdir),
          f"--config.data.dir={data}", f"--config.train.steps={steps}",
          "--config.train.checkpoint_every=2", "--config.train.eval_every=100",
          "--config.train.log_every=1"]


def test_resume_after_sigkill_is_bit_identical(data, tmp_path):
  steps = 10
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
             JAX_PLATFORMS="cpu")
  # Interrupted: killed as soon as its first checkpoint is complete, then resumed.
  killed = tmp_path / "killed"
  proc = subprocess.Popen(_train_cmd(killed, data, steps), env=env, cwd=REPO,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
  deadline = time.time() + 300
  while not (killed / "checkpoints" / "2" / "state").is_dir():
    assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
    assert time.time() < deadline
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  assert proc.wait() == -signal.SIGKILL
  stopped_at = checkpoint.manager(killed / "checkpoints", read_only=True).latest_step()
  assert stopped_at < steps
  subprocess.run(_train_cmd(killed, data, steps), env=env, cwd=REPO, check=True,
                 capture_output=True)
  # Uninterrupted.
  whole = tmp_path / "whole"
  subprocess.run(_train_cmd(whole, data, steps), env=env, cwd=REPO, check=True,
                 capture_output=True)
  logged = [r["step"] for r in read_metrics(killed, "train")]
  assert logged == list(range(1, steps + 1))  # steps after the checkpoint logged once
  a = checkpoint.load_run(killed, "latest")
  b = checkpoint.load_run(whole, "latest")
  assert a[2] == b[2] == steps
  flat_a = jax.tree_util.tree_leaves_with_path(a[1])
  flat_b = jax.tree_util.tree_leaves_with_path(b[1])
  assert [p for p, _ in flat_a] == [p for p, _ in flat_b]
  for (path, x), (_, y) in zip(flat_a, flat_b):
    np.testing.assert_array_equal(x, y, err_msg=jax.tree_util.keystr(path))


def test_nonfinite_loss_stops_the_run_naming_step_and_term(data, tmp_path):
  c = smoke("caduceus_signals", data, steps=4, log_every=2, checkpoint_every=100)
  c.optim.update(lr=1e38, init_lr=1e38, end_lr=1e38, grad_clip=1e38)
  with pytest.raises(NonFiniteError, match=r"step \d+: non-finite .*loss"):
    train_and_evaluate(c, tmp_path)
  assert checkpoint.manager(tmp_path / "checkpoints", read_only=True).latest_step() is None


def test_checkpoint_of_another_model_is_refused(soft_run, data, tmp_path):
  other = smoke("seq2exp_soft", data)
  other.model.backbone.d_model = 32
  with pytest.raises(checkpoint.CheckpointMismatch, match="d_model"):
    train_and_evaluate(other, soft_run[0])
  # Without config.json to compare, the checkpoint's own record refuses it.
  import shutil  # pylint: disable=import-outside-toplevel
  shutil.copytree(soft_run[0] / "checkpoints", tmp_path / "checkpoints")
  with pytest.raises(checkpoint.CheckpointMismatch, match="model.backbone.d_model: checkpoint 16, config 32"):
    train_and_evaluate(other, tmp_path)


def test_eval_predict_and_export(soft_run, data, tmp_path, capsys):
  workdir = soft_run[0]
  assert cli.main(["eval", "--workdir", str(workdir), "--split", "test"]) == 0
  evaluated = json.loads((workdir / "eval_test.json").read_text())
  assert evaluated["n"] == 1 and "auprc" in evaluated
  out = tmp_path / "pred"
  assert cli.main(["predict", "--workdir", str(workdir), "--data", data, "--split", "train",
                   "--out", str(out), "--threshold", "0.3", "--min-length", "1"]) == 0
  rows = (out / "predictions.csv").read_text().splitlines()
  assert rows[0] == "ensid,chrom,tss,target,prediction" and len(rows) == 1 + 18
  sizes = read_chrom_lengths(data)
  window = smoke("seq2exp_soft", data).data.window
  genes = [r.split(",") for r in rows[1:]]
  bw = pyBigWig.open(str(out / "mask.bw"))
  assert bw.chroms() == {c: n for c, n in sizes.items() if c in bw.chroms()}
  for _, chrom, tss, _, _ in genes:
    start = tracks.window_start(int(tss), window)
    lo, hi = max(0, start), min(sizes[chrom], start + window)
    values = np.array(bw.values(chrom, lo, hi))
    assert np.all(np.isfinite(values)) and np.all((values >= 0) & (values <= 1))
    assert np.all(values[(int(tss) - 10 - lo):(int(tss) + 10 - lo)] == 1.0)  # promoter
  bw.close()
  elements = tracks.read_elements(out / "elements.bed")
  spans = {e: (c, int(t)) for e, c, t, _, _ in genes}
  for el in elements:
    chrom, tss = spans[el.name]
    assert el.chrom == chrom and 0 <= el.start < el.end <= sizes[chrom]
    assert tss - window // 2 <= el.start and el.end <= tss + window // 2
  assert (out / "predicted_vs_observed.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert len(list((out / "genes").glob("*.png"))) == 4

  served, task, params = export_and_reload(workdir, tmp_path / "soft.s2x")
  rng = np.random.default_rng(0)
  for batch_size in (1, 3):
    inputs = {"dna": np.eye(4, dtype=np.float32)[rng.integers(0, 4, (batch_size, window))],
              "signals": rng.gamma(0.5, 2.0, (batch_size, window, 3)).astype(np.float32),
              "blacklist": rng.random((batch_size, window)) < 0.01,
              "rna_feat": rng.normal(size=(batch_size, 9)).astype(np.float32)}
    got = served(inputs)
    want = task.apply(params, Batch(**inputs))
    np.testing.assert_allclose(got["prediction"], want.prediction, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["mask"], want.mask, rtol=1e-5, atol=1e-6)


def test_ablate_table_and_skip(data, tmp_path, capsys):
  args = ["ablate", "--configs", "caduceus_signals,macs3_mask", "--seeds", "2", "--variant",
          "smoke", "--workdir", str(tmp_path), f"--config.data.dir={data}",
          "--config.train.steps=2"]
  assert cli.main(args) == 0
  table = (tmp_path / "results.md").read_text()
  for name in ("caduceus_signals", "macs3_mask"):
    assert f"| {name} | 2 |" in table
  assert "mask AUPRC" in table and "±" in table
  stamp = (tmp_path / "macs3_mask" / "seed_1" / "eval_test.json").stat().st_mtime_ns
  assert cli.main(args) == 0  # finished runs are skipped
  assert (tmp_path / "macs3_mask" / "seed_1" / "eval_test.json").stat().st_mtime_ns == stamp


def test_a_nan_validation_never_replaces_the_best_checkpoint(data, tmp_path, monkeypatch):
  """`not mse >= best` is true for NaN: a NaN validation used to become the new best and
  replace the good best/ that eval, predict and export read."""
  from seq2exp_jax.train import trainer  # pylint: disable=import-outside-toplevel
  real, calls = trainer.evaluate, []

  def nan_at_the_second_validation(*args, **kwargs):
    metrics = real(*args, **kwargs)
    calls.append(metrics)
    return dict(metrics, mse=float("nan")) if len(calls) == 2 else metrics

  monkeypatch.setattr(trainer, "evaluate", nan_at_the_second_validation)
  train_and_evaluate(smoke("seq2exp_soft", data, eval_every=2), tmp_path)
  assert len(calls) == 2
  best = json.loads((tmp_path / "best.json").read_text())
  assert best["step"] == 2 and best["mse"] == calls[0]["mse"]
  assert checkpoint.manager(tmp_path / "best", read_only=True).latest_step() == 2


@pytest.mark.parametrize("mse,best,wins", [
    (float("nan"), None, False), (float("nan"), {"mse": 1.0}, False),
    (float("inf"), None, False), (0.5, {"mse": 1.0}, True), (1.0, {"mse": 1.0}, False),
    (2.0, None, True)])
def test_best_selection(mse, best, wins):
  from seq2exp_jax.train.trainer import improves  # pylint: disable=import-outside-toplevel
  assert improves(mse, best) is wins


def _check_top10_export(workdir, window, artifact):
  """The frozen generator params of a top-10% run are arguments of the exported function,
  listed in the manifest (they were compiled in as constants and missing from it)."""
  from seq2exp_jax.train.task import build_task  # pylint: disable=import-outside-toplevel
  from seq2exp_jax.train.trainer import load_generator  # pylint: disable=import-outside-toplevel
  assert cli.main(["export", "--workdir", str(workdir), "--out", str(artifact)]) == 0
  served = ExportedPredictor.load(artifact)
  config, params, _ = checkpoint.load_run(workdir)
  task = build_task(config, load_generator)
  listed = served.manifest["params"]
  n_frozen = len(jax.tree.leaves(task.frozen))
  assert sum(k.startswith("frozen/") for k in listed) == n_frozen > 0
  assert sum(k.startswith("params/") for k in listed) == len(jax.tree.leaves(params))
  rng = np.random.default_rng(1)
  # Without signals the signal prior is the same everywhere: the generator alone ranks.
  inputs = {"dna": np.eye(4, dtype=np.float32)[rng.integers(0, 4, (2, window))],
            "signals": np.zeros((2, window, 3), np.float32),
            "blacklist": np.zeros((2, window), bool),
            "rna_feat": rng.normal(size=(2, 9)).astype(np.float32)}
  got = served(inputs)
  np.testing.assert_allclose(got["mask"], task.apply(params, Batch(**inputs)).mask,
                             rtol=1e-5, atol=1e-6)
  served.params["frozen"] = jax.tree.map(lambda x: -x, served.params["frozen"])
  assert not np.array_equal(served(inputs)["mask"], got["mask"])  # really an argument


def test_a_run_trained_on_8_devices_loads_on_one(data, tmp_path):
  """predict / eval / export / diagnose read a run on whatever devices the reader has:
  a checkpoint saved by an 8-device mesh restores, unchanged, in a 1-device process."""
  c = smoke("seq2exp_soft", data, steps=2, log_every=1, eval_every=2, checkpoint_every=2)
  train_and_evaluate(c, tmp_path)
  assert jax.device_count() == 8
  _, params, _ = checkpoint.load_run(tmp_path)
  np.savez(tmp_path / "here.npz", *[np.asarray(x) for x in jax.tree_util.tree_leaves(params)])
  code = ("import jax, numpy as np; from seq2exp_jax.train import checkpoint; "
          f"_, p, _ = checkpoint.load_run({str(tmp_path)!r}); assert jax.device_count() == 1; "
          f"want = np.load({str(tmp_path / 'here.npz')!r}); "
          "got = jax.tree_util.tree_leaves(p); assert len(got) == len(want.files); "
          "assert all(np.array_equal(g, want[f'arr_{i}']) for i, g in enumerate(got)); "
          "print('ok')")
  env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=300, check=False)
  assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-2000:]
