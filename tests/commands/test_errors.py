"""The error policy (data_pipeline/errors.py, seq2exp_jax/commands/dispatch.py): every user
error of every sub-command is one line `seq2exp <command>: <message>` with exit status 2
(bad input) or 1 (a failed run), never a traceback, and what was already written is left
byte-identical. Faults of the data set and the checkpoints are in test_faults.py."""

import json
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from conftest_data import smoke_soft_run, tiny_synthetic, write_layout
from data_pipeline.errors import ConfigError
from seq2exp_jax import cli
from seq2exp_jax.commands import dispatch

SOFT = str(REPO / "experiments" / "seq2exp_soft.py:smoke")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
  return tiny_synthetic(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
  """A finished 2-step seq2exp_soft smoke run."""
  return smoke_soft_run(data[1], tmp_path_factory.mktemp("run"))


def snapshot(*roots: pathlib.Path) -> dict[str, bytes]:
  """Every file under `roots`, path -> bytes (to assert nothing was touched)."""
  return {str(p): p.read_bytes() for root in roots if root.exists()
          for p in sorted(root.rglob("*")) if p.is_file()}


def one_line(capsys, command: str, argv: list[str], status: int = 2) -> str:
  """Runs `seq2exp command argv`; asserts the exit status and that stderr is exactly one
  line of the policy's form; returns the message after `seq2exp <command>: `."""
  assert cli.main([command, *argv]) == status
  err = capsys.readouterr().err
  lines = err.splitlines()
  assert len(lines) == 1 and err.endswith("\n"), err
  prefix = f"seq2exp {command}: "
  assert lines[0].startswith(prefix), lines[0]
  return lines[0][len(prefix):]


def usage_error(capsys, command: str, argv: list[str]) -> str:
  """An option refused at parse time: argparse's usage line and one error line, status 2."""
  with pytest.raises(SystemExit) as e:
    cli.main([command, *argv])
  assert e.value.code == 2
  lines = capsys.readouterr().err.splitlines()
  assert lines[-1].startswith(f"seq2exp {command}: error: argument "), lines
  return lines[-1].split(": ", 3)[-1]


def test_train_refuses_bad_configs_before_claiming_the_workdir(data, tmp_path, capsys):
  ds, w = str(data[1]), tmp_path / "w"
  base = ["--config", SOFT, "--workdir", str(w), f"--config.data.dir={ds}"]
  cases = [
      (["--config.train.nope=1"], "config override 'train.nope=1': no field 'train.nope'"),
      (["--config.train.steps=abc"],
       "config override 'train.steps=abc': invalid literal for int() with base 10: 'abc'"),
      (["--config.train.batch_size=0"], "train.batch_size = 0: expected an integer >= 1"),
      (["--config.train.batch_size=3"], "batch size 3: must be divisible by the 'data' mesh "
       "axis (8) and the process count (1)"),
      (["--config.optim.lr=-1.0"], "optim.lr = -1.0: expected a finite number > 0"),
      (["--config.data.window=1001"],
       "data.window = 1001: expected an even number of bp >= 2, or None (the stored window)"),
      (["--config.model.bottleneck.marginal_mean=2.0"],
       "model: BetaMask: marginal_mean 2.0: expected 0 < m < 1"),
      (["--config.data.dir=" + str(tmp_path / "nodata")],
       f"{tmp_path / 'nodata'}: not a prepared data set directory (no dataset_info.json); "
       "build one with `seq2exp build-data`"),
  ]
  for extra, message in cases:
    assert one_line(capsys, "train", base + extra) == message
  assert not w.exists() or not (w / "config.json").exists()  # no failed start claimed it
  assert one_line(capsys, "train", ["--config", str(tmp_path / "nope.py"), "--workdir",
                                    str(w)]) == (
      f"config file {tmp_path / 'nope.py'} not found (expected "
      "experiments/<name>.py[:variant])")
  assert one_line(capsys, "train", ["--config", SOFT.replace(":smoke", ":huge"),
                                    "--workdir", str(w)]) == (
      "unknown config variant 'huge': expected one of ('paper', 'matched', 'smoke', "
      "'synthetic')")


def test_a_workdir_of_another_model_is_refused_untouched(data, run, capsys):
  before = snapshot(run)
  message = one_line(capsys, "train", [
      "--config", str(REPO / "experiments" / "caduceus_signals.py:smoke"), "--workdir",
      str(run), f"--config.data.dir={data[1]}"], status=1)
  assert message.startswith(f"{run} holds a run of a different model (")
  assert message.endswith("; use another --workdir")
  assert snapshot(run) == before


def test_commands_reading_a_workdir_name_what_is_missing(data, run, tmp_path, capsys):
  empty = tmp_path / "empty"
  empty.mkdir()
  not_a_run = f"{empty}: no config.json; not a `seq2exp train` workdir"
  ds = str(data[1])
  for command, extra in [("eval", ["--data", ds]), ("diagnose", []),
                         ("export", ["--out", str(tmp_path / "a.s2x")]),
                         ("predict", ["--data", ds, "--out", str(tmp_path / "p")])]:
    assert one_line(capsys, command, ["--workdir", str(empty), *extra]) == not_a_run
  assert one_line(capsys, "eval", ["--workdir", str(run), "--data",
                                   str(tmp_path / "nodata")]) == (
      f"{tmp_path / 'nodata'}: not a prepared data set directory (no dataset_info.json); "
      "build one with `seq2exp build-data`")
  assert one_line(capsys, "export", ["--workdir", str(run), "--out",
                                     str(tmp_path / "no" / "a.s2x")]) == (
      f"{tmp_path / 'no' / 'a.s2x'}: directory {tmp_path / 'no'} does not exist")
  assert one_line(capsys, "export", ["--workdir", str(run), "--out", str(tmp_path / "a.s2x"),
                                     "--platforms", "quantum"]) == (
      "platforms ('quantum',): expected distinct names among ('cpu', 'cuda', 'rocm', 'tpu')")
  (run / "config.json").rename(run / "config.json.good")
  try:
    (run / "config.json").write_text("{not json")
    message = one_line(capsys, "eval", ["--workdir", str(run)], status=1)
    assert message.startswith(f"{run / 'config.json'}: not a readable run config "
                              "(JSONDecodeError: ")
  finally:
    (run / "config.json.good").replace(run / "config.json")


def test_options_are_validated_at_parse_time(data, run, tmp_path, capsys):
  ds, out = str(data[1]), tmp_path / "p"
  predict = ["--workdir", str(run), "--data", ds, "--out", str(out)]
  assert usage_error(capsys, "predict", predict + ["--threshold", "2"]) == (
      "2.0: expected a number in [0, 1] (the mask's range)")
  assert usage_error(capsys, "predict", predict + ["--min-length", "0"]) == (
      "0: expected an integer >= 1")
  assert usage_error(capsys, "eval", ["--workdir", str(run), "--batch-size", "x"]) == (
      "'x': expected an integer >= 1")
  assert usage_error(capsys, "benchmark", ["--workdir", str(tmp_path), "--seeds", "0"]) == (
      "0: expected an integer >= 1")
  for command in ("eval", "predict", "export", "diagnose"):
    argv = {"predict": ["--data", ds, "--out", str(out)], "export": ["--out", str(out)]}
    assert usage_error(capsys, command, ["--workdir", str(tmp_path / "nowhere"),
                                         *argv.get(command, [])]) == (
        f"{tmp_path / 'nowhere'}: no such directory")
  assert not out.exists()
  # Names are checked before any genome is made.
  assert one_line(capsys, "benchmark", ["--preset", "tiny", "--workdir", str(tmp_path / "b"),
                                        "--models", "nosuch"]).startswith("config file ")
  assert not (tmp_path / "b").exists()


def test_predict_replaces_its_outputs_as_a_set_or_not_at_all(data, run, tmp_path, capsys,
                                                             monkeypatch):
  out = tmp_path / "p"
  argv = ["--workdir", str(run), "--data", str(data[1]), "--split", "test", "--out",
          str(out), "--plot-genes", "1"]
  assert cli.main(["predict", *argv]) == 0
  capsys.readouterr()
  before = snapshot(out)
  assert {pathlib.Path(p).name for p in before} >= {"predictions.csv", "mask.bw",
                                                     "elements.bed"}
  from seq2exp_jax.outputs import genome_tracks  # pylint: disable=import-outside-toplevel

  def fail(*args, **kwargs):
    raise RuntimeError("disk full")
  monkeypatch.setattr(genome_tracks, "write_elements", fail)
  with pytest.raises(RuntimeError, match="disk full"):  # a bug keeps its traceback
    cli.main(["predict", *argv, "--threshold", "0.9"])
  assert snapshot(out) == before  # the old set whole, nothing of the failed run
  assert [p.name for p in tmp_path.iterdir()] == ["p"]  # and no temporary left
  monkeypatch.undo()
  # A directory holding anything predict did not write is never replaced.
  (out / "notes.txt").write_text("mine")
  before = snapshot(out)
  assert one_line(capsys, "predict", argv) == (
      f"--out {out}: holds files predict did not write (['notes.txt']); choose a new or "
      "empty directory")
  assert snapshot(out) == before


def test_golden_file_errors(tmp_path, capsys):
  (tmp_path / "bad.npz").write_text("not an npz")
  message = one_line(capsys, "verify-reference", [str(tmp_path / "bad.npz")])
  assert message.startswith(f"{tmp_path / 'bad.npz'}: not a readable .npz archive of "
                            "param/, input/ and output/ arrays (")
  np.savez(tmp_path / "full.npz", **{"param/w": np.ones(3), "input/x": np.ones(2),
                                     "output/y": np.ones(1)})
  blob = (tmp_path / "full.npz").read_bytes()
  (tmp_path / "cut.npz").write_bytes(blob[:len(blob) // 2])
  assert one_line(capsys, "verify-reference", [str(tmp_path / "cut.npz")]).startswith(
      f"{tmp_path / 'cut.npz'}: not a readable .npz archive")
  np.savez(tmp_path / "noinput.npz", **{"param/w": np.ones(3), "output/y": np.ones(1)})
  assert one_line(capsys, "verify-reference", [str(tmp_path / "noinput.npz")]) == (
      f"{tmp_path / 'noinput.npz'}: no input/<name> arrays: a golden file holds the inputs "
      "the outputs were computed from")
  assert one_line(capsys, "verify-reference", [str(tmp_path / "full.npz")]) == (
      f"{tmp_path / 'full.json'}: no such file (the model config JSON of full.npz; pass "
      "--config)")
  (tmp_path / "w.pt").write_text("not a checkpoint")
  message = one_line(capsys, "convert-torch", [str(tmp_path / "w.pt"), "--config",
                                               str(tmp_path / "c.json"), "--out",
                                               str(tmp_path / "o.msgpack")])
  assert message.startswith(f"{tmp_path / 'w.pt'}: ")
  assert not (tmp_path / "o.msgpack").exists()


def test_files_that_must_agree_are_checked_against_each_other(tmp_path, capsys):
  fx = write_layout(tmp_path / "root")
  out = tmp_path / "tfds"
  build = ["--data-root", str(fx.root), "--window", "1000", "--out", str(out)]
  fasta = fx.layout.fasta
  good = fasta.read_bytes()
  fasta.write_bytes(good[:-600])  # a truncated download: chr2 loses ~600 bases
  message = one_line(capsys, "build-data", build)
  assert re.fullmatch(
      rf"{re.escape(str(fasta))}: chr2 has length 1,9\d\d but "
      rf"{re.escape(str(fx.layout.chr_length_json))} says 2,500; the two files must describe "
      r"the same genome \(a truncated download or another assembly\?\)", message), message
  # The index pyfaidx wrote for the truncated file no longer matches the whole one.
  assert fasta.with_name(fasta.name + ".fai").is_file()
  fasta.write_bytes(good)
  assert one_line(capsys, "build-data", build) == (
      f"{fasta}.fai: does not match {fasta} (record 'chr2': its sequence goes on past the "
      "length the index gives); the FASTA changed after it was indexed: delete the .fai and "
      "it is rebuilt")
  fai = fasta.with_name(fasta.name + ".fai")
  rows = [line.split("\t") for line in fai.read_text().splitlines()]
  fai.write_text("".join("\t".join([r[0], "9999" if r[0] == "chr2" else r[1], *r[2:]]) + "\n"
                         for r in rows))
  message = one_line(capsys, "build-data", build)
  assert "(record 'chr2': its last base lies past the end of the FASTA)" in message
  fasta.with_name(fasta.name + ".fai").unlink()
  lengths = json.loads(fx.layout.chr_length_json.read_text())
  lengths["hg38"]["chr1"] = 3001
  fx.layout.chr_length_json.write_text(json.dumps(lengths))
  assert one_line(capsys, "build-data", build) == (
      f"{fasta}: chr1 has length 3,000 but {fx.layout.chr_length_json} says 3,001; the two "
      "files must describe the same genome (a truncated download or another assembly?)")
  assert not out.exists() or not any(out.rglob("dataset_info.json"))


def test_debug_shows_the_traceback(tmp_path):
  with pytest.raises(ConfigError):
    cli.main(["train", "--debug", "--config", SOFT, "--workdir", str(tmp_path),
              "--config.train.nope=1"])


def test_the_installed_command_prints_no_traceback(tmp_path):
  """The entry point as a user runs it, one bad input per command."""
  empty = tmp_path / "empty"
  empty.mkdir()
  (tmp_path / "bad.npz").write_text("x")
  cases = {
      "train": ["--config", SOFT, "--workdir", str(empty), "--config.train.nope=1"],
      "eval": ["--workdir", str(empty)],
      "predict": ["--workdir", str(empty), "--data", str(empty), "--out", str(tmp_path / "p")],
      "attribute": ["--workdir", str(empty), "--data", str(empty), "--out",
                    str(tmp_path / "at")],
      "score-variants": ["--workdir", str(empty), "--data", str(empty), "--vcf",
                         str(tmp_path / "no.vcf"), "--out", str(tmp_path / "v.tsv")],
      "export": ["--workdir", str(empty), "--out", str(tmp_path / "a.s2x")],
      "diagnose": ["--workdir", str(empty)],
      "links": ["--workdir", str(empty), "--data", str(empty), "--out", str(tmp_path / "l.tsv")],
      "evaluate-links": ["--links", str(tmp_path / "no.tsv"), "--benchmark", str(tmp_path)],
      "motifs": ["--elements", str(tmp_path / "no.bed"), "--data-root", str(tmp_path / "nope"),
                 "--out", str(tmp_path / "m")],
      "verify-reference": [str(tmp_path / "bad.npz")],
      "convert-torch": [str(tmp_path / "nope.pt"), "--config", "c.json", "--out", "o"],
      "ablate": ["--configs", "nosuch", "--workdir", str(tmp_path / "a")],
      "benchmark": ["--workdir", str(tmp_path / "b"), "--models", "nosuch"],
      "synth": ["--out", str(tmp_path / "s"), "--preset", "tiny", "--genes", "2"],
      "build-data": ["--data-root", str(tmp_path / "nope"), "--out", str(tmp_path / "t")],
      "demo": ["--workdir", str(empty), "--steps", "0"],
  }
  # One process runs every case, as the console script does (main() and its exit status),
  # and reports each one's status and stderr.
  script = """
import contextlib, io, json, sys, traceback
from seq2exp_jax.commands.dispatch import main
report = {}
for command, argv in json.loads(sys.argv[1]).items():
  err = io.StringIO()
  with contextlib.redirect_stderr(err):
    try:
      status = main([command, *argv])
    except SystemExit as e:
      status = e.code
    except BaseException:
      traceback.print_exc()
      status = "raised"
  report[command] = [status, err.getvalue()]
print(json.dumps(report))
"""
  p = subprocess.run([sys.executable, "-c", script, json.dumps(cases)], capture_output=True,
                     text=True, cwd=tmp_path, timeout=600)
  assert p.returncode == 0, p.stderr[-3000:]
  report = json.loads(p.stdout.strip().splitlines()[-1])
  for command, (status, err) in report.items():
    assert status == 2 and "Traceback" not in err, (command, status, err[-2000:])
    assert err.strip().splitlines()[-1].startswith(f"seq2exp {command}: "), (command, err)
  assert sorted(report) == sorted(dispatch.COMMANDS)  # every sub-command is covered
  shutil.rmtree(empty)
