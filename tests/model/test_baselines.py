"""The backbone + head baselines, and the backbone registry they share with Seq2Exp."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seq2exp_jax.model.backbones import BACKBONES, backbone_config, build_backbone
from seq2exp_jax.model.baselines import GeneExpModel
from seq2exp_jax.model.caduceus import Caduceus
from seq2exp_jax.model.hyena import HyenaBackbone, HyenaConfig
from seq2exp_jax.model.ssm_config import SSMConfig

KEY = jax.random.PRNGKey(0)


def _inputs(batch=2, length=32, seed=1):
  k = jax.random.split(jax.random.PRNGKey(seed), 3)
  dna = jax.nn.one_hot(jax.random.randint(k[0], (batch, length), 0, 5), 4)  # 4 -> N row
  sig = jax.random.gamma(k[1], 0.5, (batch, length, 3))
  rna = jax.random.normal(k[2], (batch, 9))
  return dna, sig, rna


@pytest.mark.parametrize("kind,use_signals", [("caduceus", False), ("caduceus", True),
                                              ("mamba", True), ("hyena", True)])
def test_baselines_forward_and_grad(kind, use_signals):
  dna, sig, rna = _inputs()
  model = GeneExpModel(backbone_config(kind, d_model=16), n_layer=2, center_len=8,
                       use_signals=use_signals)
  params = model.init(KEY, dna, sig, rna)
  assert set(params["params"]) == {"input_layer", kind, "pToExpr"}
  out = model.apply(params, dna, sig, rna)
  assert out.prediction.shape == (2,) and out.prediction.dtype == jnp.float32
  assert out.mask is None and float(out.kl) == 0.0
  grads = jax.grad(lambda p: jnp.sum(model.apply(p, dna, sig, rna).prediction))(params)
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
  changed = not np.allclose(model.apply(params, dna, sig + 1.0, rna).prediction,
                            out.prediction)
  assert changed == use_signals


def test_baseline_refuses_a_mask():
  dna, sig, rna = _inputs()
  model = GeneExpModel(SSMConfig(d_model=16), n_layer=1, center_len=8)
  params = model.init(KEY, dna, sig, rna)
  with pytest.raises(ValueError, match="takes no mask"):
    model.apply(params, dna, sig, rna, mask=jnp.ones(dna.shape[:2]))


def test_registry_builds_each_kind_from_its_config():
  assert set(BACKBONES) == {"caduceus", "mamba", "hyena"}
  assert backbone_config("caduceus", d_model=8).bidirectional
  assert not backbone_config("mamba", d_model=8).bidirectional
  assert isinstance(build_backbone(backbone_config("mamba", d_model=8), 2), Caduceus)
  assert isinstance(build_backbone(HyenaConfig(d_model=8), 2), HyenaBackbone)
  for kind in BACKBONES:
    assert backbone_config(kind, d_model=8).kind == kind
  with pytest.raises(ValueError, match="backbone kind 'transformer'"):
    backbone_config("transformer")
  with pytest.raises(ValueError, match=r"unknown setting\(s\) \['d_state'\]"):
    backbone_config("hyena", d_state=16)  # a Hyena has no SSM state
  with pytest.raises(ValueError, match="bidirectional"):
    backbone_config("mamba", bidirectional=True)  # the kind fixes it
