"""Faults a user meets and what survives them: damaged checkpoints (moved aside, training
resumes from the newest good one, the result equals an uninterrupted run), damaged data-set
shards (named), and kill -9 during a checkpoint save, `predict` and `build-data` (rerun: the
result equals an uninterrupted run, and what was there before is intact meanwhile)."""

import os
import pathlib
import shutil
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from conftest import REPO
from conftest_data import tiny_synthetic, write_layout
from data_pipeline.loader import open_split
from seq2exp_jax import cli
from seq2exp_jax.train import checkpoint

ENV = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
           JAX_PLATFORMS="cpu")
SOFT = str(REPO / "experiments" / "seq2exp_soft.py:smoke")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
  return tiny_synthetic(tmp_path_factory.getbasetemp())


def train_argv(workdir, data, *extra):
  return ["train", "--config", SOFT, "--workdir", str(workdir), f"--config.data.dir={data[1]}",
          "--config.train.steps=4", "--config.train.checkpoint_every=2",
          "--config.train.eval_every=100", *extra]


def seq2exp(*argv, kill_in: str = "", check=True) -> subprocess.CompletedProcess:
  """`seq2exp argv` in a fresh process. `kill_in` (module:function or module:Class.method)
  makes the process SIGKILL itself when that function is called, or when the method's
  second call returns, to stop it at that exact point."""
  script = "import sys\n"
  if kill_in:
    module, attr = kill_in.split(":")
    script += (f"import os, signal, importlib\nm = importlib.import_module({module!r})\n"
               f"real = getattr(m, {attr!r}.split('.')[0])\n")
    if "." in attr:  # a method: killed as its second call returns (its work under way)
      method = attr.split(".")[1]
      script += (f"orig = getattr(real, {method!r}); calls = []\n"
                 "def killer(*a, **k):\n  calls.append(1)\n  out = orig(*a, **k)\n"
                 "  if len(calls) == 2:\n    os.kill(os.getpid(), signal.SIGKILL)\n"
                 f"  return out\nsetattr(real, {method!r}, killer)\n")
    else:
      script += ("def killer(*a, **k):\n  os.kill(os.getpid(), signal.SIGKILL)\n"
                 f"setattr(m, {attr!r}, killer)\n")
  script += "from seq2exp_jax.commands.dispatch import main\nsys.exit(main(sys.argv[1:]))"
  p = subprocess.run([sys.executable, "-c", script, *argv], env=ENV, cwd=REPO,
                     capture_output=True, text=True, timeout=600)
  if kill_in:
    assert p.returncode == -signal.SIGKILL, p.stderr[-3000:]
  elif check:
    assert p.returncode == 0, p.stderr[-3000:]
  return p


def params_of(workdir):
  _, params, step = checkpoint.load_run(workdir, "latest")
  return step, jax.tree_util.tree_leaves_with_path(params)


def assert_same_params(a, b):
  assert a[0] == b[0]
  assert [p for p, _ in a[1]] == [p for p, _ in b[1]]
  for (path, x), (_, y) in zip(a[1], b[1]):
    np.testing.assert_array_equal(x, y, err_msg=jax.tree_util.keystr(path))


@pytest.fixture(scope="module")
def whole(data, tmp_path_factory):
  """An uninterrupted 4-step run (checkpoints at 2 and 4)."""
  workdir = tmp_path_factory.mktemp("whole") / "run"
  seq2exp(*train_argv(workdir, data))
  return workdir


def _damage(step_dir: pathlib.Path) -> None:
  """Truncates every array data file of a checkpoint's state (a copy cut short)."""
  files = [p for p in (step_dir / "state").rglob("*") if p.is_file() and p.parent.name == "d"]
  assert files
  for f in files:
    os.truncate(f, f.stat().st_size // 3)


def test_a_damaged_checkpoint_is_moved_aside_and_training_resumes_before_it(
    data, whole, tmp_path, caplog):
  run = tmp_path / "run"
  shutil.copytree(whole, run)
  _damage(run / "checkpoints" / "4")
  damaged = {p.relative_to(run / "checkpoints" / "4"): p.read_bytes()
             for p in (run / "checkpoints" / "4").rglob("*") if p.is_file()}
  with caplog.at_level("WARNING", logger="seq2exp_jax.train.checkpoint"):
    assert cli.main(train_argv(run, data)) == 0
  assert f"{run / 'checkpoints' / '4'} cannot be restored" in caplog.text
  assert "resuming from step 2, the newest checkpoint that restores" in caplog.text
  aside = run / "unreadable_checkpoints" / "checkpoints_4"
  assert {q.relative_to(aside): q.read_bytes() for q in aside.rglob("*")
          if q.is_file()} == damaged  # kept as it was, never deleted
  assert_same_params(params_of(run), params_of(whole))


def test_no_restorable_checkpoint_needs_restart(data, whole, tmp_path, capsys):
  run = tmp_path / "run"
  shutil.copytree(whole, run)
  for step in ("2", "4"):
    _damage(run / "checkpoints" / step)
  assert cli.main(train_argv(run, data)) == 1
  line = capsys.readouterr().err.strip().splitlines()[-1]
  assert line.startswith(f"seq2exp train: {run / 'checkpoints'}: no checkpoint can be "
                         "restored (step 4: ")
  assert line.endswith("refusing to train from step 0 over them: pass --restart to do so")
  # Run again: still refused (the damaged ones are aside, not forgotten).
  assert cli.main(train_argv(run, data)) == 1
  assert "pass --restart" in capsys.readouterr().err
  assert sorted(q.name for q in (run / "unreadable_checkpoints").iterdir()) == [
      "checkpoints_2", "checkpoints_4"]
  assert cli.main(train_argv(run, data, "--restart")) == 0
  assert_same_params(params_of(run), params_of(whole))


def test_a_damaged_shard_is_named(data, tmp_path, capsys):
  ds = tmp_path / "ds"
  shutil.copytree(data[1], ds)
  shard = sorted(ds.glob("*-train.array_record-*"))[0]
  os.truncate(shard, shard.stat().st_size // 2)
  with pytest.raises(Exception, match=(
      rf"{shard}: shard 1 of 1 of split 'train' holds \d+ records, dataset_info.json says 18 "
      r"\(truncated or damaged\); rebuild the data set with `seq2exp build-data`")):
    open_split(ds, "train")
  (ds / "dataset_info.json").write_text("{")
  assert cli.main(["eval", "--workdir", str(tmp_path), "--data", str(ds)]) == 2
  assert "no config.json" in capsys.readouterr().err  # the workdir is checked first


def test_kill_during_a_checkpoint_save_then_rerun(data, whole, tmp_path):
  run = tmp_path / "run"
  # Killed while Orbax writes the second save (after step 2's, which is complete).
  seq2exp(*train_argv(run, data), kill_in="orbax.checkpoint:CheckpointManager.save")
  assert checkpoint.manager(run / "checkpoints", read_only=True).latest_step() in (2, 4)
  seq2exp(*train_argv(run, data))
  assert_same_params(params_of(run), params_of(whole))


def test_kill_during_predict_keeps_the_old_outputs_then_rerun(data, whole, tmp_path):
  out, again = tmp_path / "p", tmp_path / "whole_p"
  argv = ["predict", "--workdir", str(whole), "--data", str(data[1]), "--split", "test",
          "--plot-genes", "0"]
  seq2exp(*argv, "--out", str(again), "--threshold", "0.9")
  seq2exp(*argv, "--out", str(out))
  before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
  seq2exp(*argv, "--out", str(out), "--threshold", "0.9",
          kill_in="seq2exp_jax.outputs.genome_tracks:write_elements")
  assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
  seq2exp(*argv, "--out", str(out), "--threshold", "0.9")
  for name in ("predictions.csv", "elements.bed", "mask.bw", "metrics.json"):
    assert (out / name).read_bytes() == (again / name).read_bytes(), name
  assert sorted(p.name for p in tmp_path.iterdir()) == ["p", "whole_p"]  # temporaries gone


def test_kill_during_build_data_keeps_the_old_data_set_then_rerun(tmp_path):
  fx = write_layout(tmp_path / "root")
  argv = ["build-data", "--data-root", str(fx.root), "--window", "1000", "--out"]
  seq2exp(*argv, str(tmp_path / "whole"))
  out = tmp_path / "tfds"
  seq2exp(*argv, str(out), "--peak-cutoff", "1e6")  # an older build, other peaks
  ds_dir = out / "geneexp" / "k562_1000" / "1.0.0"
  before = {p.name: p.read_bytes() for p in ds_dir.iterdir()}
  seq2exp(*argv, str(out), kill_in="data_pipeline.readers.window:WindowReader.read")
  assert {p.name: p.read_bytes() for p in ds_dir.iterdir()} == before
  assert any(p.name.startswith(".build-") for p in ds_dir.parent.iterdir())  # left by the kill
  seq2exp(*argv, str(out))
  whole = tmp_path / "whole" / "geneexp" / "k562_1000" / "1.0.0"
  assert (ds_dir / "macs3_dnase_peaks.narrowPeak").read_bytes() == (
      whole / "macs3_dnase_peaks.narrowPeak").read_bytes()
  for split in ("train", "valid", "test"):
    got, want = open_split(ds_dir, split), open_split(whole, split)
    assert len(got) == len(want) > 0
    for a, b in zip(sorted(got, key=lambda e: e["ensid"]), sorted(want, key=lambda e: e["ensid"])):
      assert a.keys() == b.keys()
      for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=f"{split} {key}")
  assert sorted(p.name for p in ds_dir.parent.iterdir()) == sorted(
      ["1.0.0", ds_dir.resolve().name])  # the killed build's temporaries removed
  assert not any(p.name.startswith(".peaks-") for p in out.iterdir())


def test_reading_a_damaged_checkpoint_names_it(data, whole, tmp_path, capsys):
  run = tmp_path / "run"
  shutil.copytree(whole, run)
  step = checkpoint.manager(run / "best", read_only=True).latest_step()
  _damage(run / "best" / str(step))
  before = {str(p): p.read_bytes() for p in run.rglob("*") if p.is_file()}
  assert cli.main(["eval", "--workdir", str(run), "--split", "test"]) == 1
  line = capsys.readouterr().err.strip().splitlines()[-1]
  assert line.startswith(f"seq2exp eval: {run / 'best'}/{step}: cannot be restored (")
  assert line.endswith(") (try --which latest)")
  assert {str(p): p.read_bytes() for p in run.rglob("*") if p.is_file()} == before  # read only
  assert cli.main(["eval", "--workdir", str(run), "--split", "test", "--which", "latest"]) == 0
