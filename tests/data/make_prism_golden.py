"""Writes tests/data/g_prism_signal.npz: Prism's original SignalWeightGenerator and
compute_uniform_loss (yangzhao1230/Prism src/models/sequence/GeneExpformer.py lines 17-65,
102-116, copied from the file at run time) on random signals in training mode, with their
weights, for tests/model/test_prism.py. Needs PyTorch (never in the project's venv):

    python3.11 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch numpy
    /tmp/torchvenv/bin/python tests/data/make_prism_golden.py /path/to/Prism.git

The model width, contexts and CNN width are small (D 16, n 3, c 4) so that the file is;
the window (2,000) is the paper's, so the three pools floor 2000 -> 500 -> 125 -> 31.
"""

import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import torch

B, L, S, D, N_CONTEXT, CNN_DIM, T = 3, 2000, 3, 16, 3, 4, 2.0


def original_source(repo: str) -> str:
  """The encoder class and the uniform loss from the original file (not imported: the file
  imports Caduceus, which needs mamba-ssm)."""
  text = subprocess.run(["git", "-C", repo, "show", "HEAD:src/models/sequence/GeneExpformer.py"],
                        check=True, capture_output=True, text=True).stdout
  encoder = text.split("class SignalWeightGenerator", 1)[1].split("\n# Paper Section 3:")[0]
  loss = text.split("    def compute_uniform_loss", 1)[1].split("\n    def forward")[0]
  loss = textwrap.dedent("    def compute_uniform_loss" + loss)  # a method -> a function
  return ("import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
          "class SignalWeightGenerator" + encoder + "\n" + loss)


def main(repo: str) -> None:
  scope: dict = {}
  exec(original_source(repo), scope)  # noqa: S102
  torch.manual_seed(0)
  gen = scope["SignalWeightGenerator"](S, D, N_CONTEXT, CNN_DIM).train()
  for m in gen.modules():  # non-trivial BatchNorm affine params
    if isinstance(m, torch.nn.BatchNorm1d):
      torch.nn.init.uniform_(m.weight, 0.5, 1.5)
      torch.nn.init.uniform_(m.bias, -0.5, 0.5)
  signals = torch.rand(B, L, S) * torch.tensor([30.0, 80.0, 2.0])
  weights = gen(signals.permute(0, 2, 1))
  holder = type("Holder", (), {"gaussian_kernel_t": T})()
  loss = scope["compute_uniform_loss"](holder, weights)
  arrays = {f"param/{k}": v.detach().numpy() for k, v in gen.named_parameters()}
  arrays.update(n_params=np.int64(sum(p.numel() for p in gen.parameters())),
                signals=signals.numpy(), weights=weights.detach().numpy(),
                uniform_loss=np.float32(loss.item()), t=np.float32(T),
                shape=np.array([D, N_CONTEXT, CNN_DIM]))
  out = pathlib.Path(__file__).with_name("g_prism_signal.npz")
  np.savez_compressed(out, **arrays)
  print(f"wrote {out}: weights {tuple(weights.shape)}, uniform loss {loss.item():.6f}")


if __name__ == "__main__":
  main(sys.argv[1] if len(sys.argv) > 1 else "/work/.mirror/yangzhao1230+Prism/repo")
