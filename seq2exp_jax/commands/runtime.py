"""Process-level XLA settings, applied by the entry points before JAX starts.

XLA:CPU's default "concurrency optimized" scheduler orders a training step for parallel
thunk execution and keeps far more activations alive at once: for a Seq2Exp-soft step at
L=16,384 it plans 647 MiB of temp buffers, against 386 MiB with the memory-minimising
scheduler, at the same speed on 2 cores (benchmarks/model_step.py). 200 kb windows need the
latter on CPU. The flag only concerns the CPU backend.
"""

from __future__ import annotations

import os
import sys

CPU_MEMORY_SCHEDULER_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler=false"


def prefer_memory_saving_cpu_schedule() -> bool:
  """Adds the flag to XLA_FLAGS unless the user chose a value or JAX already started.

  Returns whether the flag is in effect for this process.
  """
  flags = os.environ.get("XLA_FLAGS", "")
  if "xla_cpu_enable_concurrency_optimized_scheduler" in flags:
    return CPU_MEMORY_SCHEDULER_FLAG in flags
  if "jax" in sys.modules:  # too late: XLA has read its flags
    return False
  os.environ["XLA_FLAGS"] = f"{flags} {CPU_MEMORY_SCHEDULER_FLAG}".strip()
  return True
