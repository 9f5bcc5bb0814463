"""A Lightning `.ckpt` of the original code converts exactly like the same weights as an
`.npz` (needs the optional torch extra; skipped without it, as in CI)."""

import pathlib

import jax
import numpy as np
import pytest

from seq2exp_jax.commands.convert_torch import convert_checkpoint
from seq2exp_jax.torch_port import reference as ref

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("name", ["d_seq2exp_soft", "f_geneexp_bimamba"])
def test_a_lightning_checkpoint_converts_like_its_npz(name, data_dir, tmp_path):
  case = ref.GoldenCase.load(data_dir / f"{name}.npz")
  ckpt = tmp_path / "last.ckpt"
  # What Lightning writes: the LightningModule's state_dict, keys prefixed with `model.`.
  torch.save({"epoch": 3, "global_step": 1000, "state_dict": {
      f"model.{k}": torch.from_numpy(np.array(v)) for k, v in case.params.items()}}, ckpt)
  config = data_dir / f"{name}.json"
  _, from_ckpt = convert_checkpoint(pathlib.Path(ckpt), config)
  _, from_npz = convert_checkpoint(data_dir / f"{name}.npz", config)
  leaves = jax.tree_util.tree_leaves_with_path(from_ckpt)
  assert jax.tree_util.tree_structure(from_ckpt) == jax.tree_util.tree_structure(from_npz)
  for (path, a), b in zip(leaves, jax.tree_util.tree_leaves(from_npz)):
    np.testing.assert_array_equal(a, b, err_msg=jax.tree_util.keystr(path))
