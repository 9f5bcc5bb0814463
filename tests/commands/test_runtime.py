"""The entry points ask XLA:CPU for its memory-minimising scheduler before JAX starts."""

import os
import subprocess
import sys

from seq2exp_jax.commands import runtime


def test_flag_added_before_jax_starts():
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
  code = ("from seq2exp_jax.commands import runtime; assert runtime.prefer_memory_saving_cpu_schedule();"
          "import os, jax; print(os.environ['XLA_FLAGS']); print(jax.device_count())")
  out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       check=True).stdout.split()
  assert runtime.CPU_MEMORY_SCHEDULER_FLAG in out and "--xla_force_host_platform_device_count=2" in out
  assert out[-1] == "2"  # the user's flags are kept


def test_user_choice_wins_and_late_calls_change_nothing(monkeypatch):
  monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_concurrency_optimized_scheduler=true")
  assert not runtime.prefer_memory_saving_cpu_schedule()
  assert os.environ["XLA_FLAGS"] == "--xla_cpu_enable_concurrency_optimized_scheduler=true"
  monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
  assert "jax" in sys.modules  # the test process already started JAX
  assert not runtime.prefer_memory_saving_cpu_schedule()
  assert os.environ["XLA_FLAGS"] == "--xla_force_host_platform_device_count=8"
