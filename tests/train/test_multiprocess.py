"""Many processes for real: `seq2exp train --distributed` as 2 processes on this machine
(jax.distributed on localhost, Gloo CPU collectives, 4 simulated devices each) against one
process with 8 devices: the same losses and validation metrics, logs written once (by
process 0), a resume across the 2 processes that equals the uninterrupted run, and a clear
refusal from `predict`."""

import json
import os
import shutil
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from conftest import REPO
from conftest_data import tiny_synthetic
from seq2exp_jax.train import checkpoint
from seq2exp_jax.train.metric_writer import read_metrics

SOFT = str(REPO / "experiments" / "seq2exp_soft.py:smoke")
PSUM = """
import jax, jax.numpy as jnp, sys
jax.distributed.initialize(sys.argv[1], 2, int(sys.argv[2]))
mesh = jax.make_mesh((8,), ("data",))
s = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
x = jax.make_array_from_process_local_data(s, jnp.ones(4))
assert float(jax.jit(jnp.sum)(x)) == 8.0
"""


def _port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _env(devices: int) -> dict:
  return dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
              JAX_PLATFORMS="cpu")


def two_processes(argv: list[str], timeout: int = 600) -> list[subprocess.CompletedProcess]:
  """Runs `python argv...` as processes 0 and 1 of one distributed run."""
  address = f"localhost:{_port()}"
  procs = [subprocess.Popen([sys.executable, *argv, *(["--coordinator", address,
                                                        "--num-processes", "2",
                                                        "--process-id", str(i)]
                                                       if argv[0] == "-m" else
                                                       [address, str(i)])],
                            env=_env(4), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True) for i in range(2)]
  results = []
  for p in procs:
    out, err = p.communicate(timeout=timeout)
    results.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
  return results


@pytest.fixture(scope="module")
def collectives():
  done = two_processes(["-c", PSUM], timeout=120)
  if any(p.returncode for p in done):
    pytest.skip("this platform cannot run JAX's CPU collectives between processes (Gloo): "
                + done[0].stderr.strip().splitlines()[-1][:200])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
  return str(tiny_synthetic(tmp_path_factory.getbasetemp())[1])


def train(workdir, data) -> list[str]:
  return ["-m", "seq2exp_jax.cli", "train", "--config", SOFT, "--workdir", str(workdir),
          f"--config.data.dir={data}", "--config.train.steps=4",
          "--config.train.log_every=1", "--config.train.eval_every=2",
          "--config.train.checkpoint_every=2", "--distributed"]


def _params(workdir):
  _, params, step = checkpoint.load_run(workdir, "latest")
  return step, jax.tree_util.tree_leaves(params)


def test_two_processes_train_like_one_and_resume_across_both(collectives, data, tmp_path):
  one = tmp_path / "one"
  subprocess.run([sys.executable, *train(one, data)[:-1]], env=_env(8), cwd=REPO,
                 check=True, capture_output=True)
  two = tmp_path / "two"
  p0, p1 = two_processes(train(two, data))
  assert p0.returncode == p1.returncode == 0, (p0.stderr[-2000:], p1.stderr[-2000:])
  assert json.loads(p0.stdout[p0.stdout.index("{"):])["step"] == 4
  assert "{" not in p1.stdout  # only process 0 reports
  for split, keys in (("train", ("loss", "huber", "kl", "grad_norm")),
                      ("valid", ("mse", "mae", "mask_ratio"))):
    a, b = read_metrics(one, split), read_metrics(two, split)
    assert [r["step"] for r in a] == [r["step"] for r in b]  # each step logged once
    for ra, rb in zip(a, b):
      for key in keys:
        np.testing.assert_allclose(rb[key], ra[key], rtol=1e-5, atol=1e-5,
                                   err_msg=f"{split} step {ra['step']} {key}")
  # Both processes wrote their shards of each checkpoint; process 0 the rest.
  assert sorted(q.name for q in (two / "checkpoints" / "4" / "state").glob("ocdbt.process_*")
                ) == ["ocdbt.process_0", "ocdbt.process_1"]
  assert sorted(q.name for q in two.iterdir()) == ["best", "best.json", "checkpoints",
                                                   "config.json", "metrics.jsonl"]
  # Resume across the 2 processes from step 2: the same step-4 params, bit for bit.
  final = _params(two)
  shutil.move(two / "checkpoints" / "4", tmp_path / "step4")
  p0, p1 = two_processes(train(two, data))
  assert p0.returncode == p1.returncode == 0, (p0.stderr[-2000:], p1.stderr[-2000:])
  resumed = _params(two)
  assert resumed[0] == final[0] == 4
  for x, y in zip(resumed[1], final[1]):
    np.testing.assert_array_equal(x, y)
  assert [r["step"] for r in read_metrics(two, "train")] == [1, 2, 3, 4]
  # predict writes one set of files from one checkpoint: refused by name.
  done = two_processes(["-m", "seq2exp_jax.cli", "predict", "--workdir", str(two), "--data",
                        data, "--out", str(tmp_path / "p"), "--distributed"])
  for p in done:
    assert p.returncode == 2
    assert p.stderr.strip().splitlines()[-1] == (
        "seq2exp predict: --distributed: predict runs in one process (it writes one set of "
        "files and reads one checkpoint on one device), this launch has 2; run it once, "
        "without --distributed")
  assert not (tmp_path / "p").exists()
