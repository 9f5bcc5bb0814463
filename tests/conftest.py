"""Test set-up: 8 simulated CPU devices, so sharding code is really exercised, and every
shape annotation of the model layer checked at run time (jaxtyping + beartype)."""

import os
import pathlib

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

from jaxtyping import install_import_hook  # noqa: E402

REPO = pathlib.Path(__file__).parents[1]
# Pytree dataclasses are rebuilt by JAX transformations with leaves that are not arrays
# (ShapeDtypeStructs under eval_shape, shardings, None), so their field annotations
# document shapes without being checked; the functions that make and read them are.
PYTREE_DATACLASS_MODULES = {"outputs"}
CHECKED_MODULES = sorted(f"seq2exp_jax.model.{p.stem}" for p in
                         (REPO / "seq2exp_jax" / "model").glob("*.py")
                         if p.stem not in PYTREE_DATACLASS_MODULES | {"__init__"})
# Before anything imports the model layer: its functions and module calls then check the
# shapes and dtypes they are annotated with, in every test.
install_import_hook(CHECKED_MODULES, "beartype.beartype")

import jax  # noqa: E402,F401  (after the flags)
import pytest  # noqa: E402

DATA_DIR = pathlib.Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> pathlib.Path:
  return DATA_DIR
