"""The initialization of Bahdanau et al. (2015), appendix B.2, as an option.

Recurrent weight matrices: random orthogonal (per gate block, GRU or LSTM). Attention weights: N(0, 0.001^2),
except the scorer's output vector v: zero. Biases: zero. Every other weight: N(0, 0.01^2).
"""

from __future__ import annotations

import torch
from torch import nn


def _is_bias(name: str) -> bool:
    return name.rsplit(".", 1)[-1].startswith("bias")  # also nn.GRU's bias_ih_l0, bias_hh_l0_reverse


def _is_recurrent(name: str) -> bool:
    return "weight_hh" in name or "hidden_to_gates" in name  # nn.GRU's/nn.LSTM's and the stacks' U


def bahdanau_init_(model: nn.Module) -> None:
    """Re-initializes `model` in place by parameter name (see the module docstring)."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if _is_bias(name) or name.endswith(".v.weight"):
                nn.init.zeros_(parameter)
            elif _is_recurrent(name):
                for block in parameter.chunk(parameter.size(0) // parameter.size(1), dim=0):  # one per gate
                    nn.init.orthogonal_(block)
            elif ".attention." in name or name.startswith("attention."):
                nn.init.normal_(parameter, std=0.001)
            else:
                nn.init.normal_(parameter, std=0.01)
        for module in model.modules():  # the padding embedding stays zero
            if isinstance(module, nn.Embedding) and module.padding_idx is not None:
                module.weight[module.padding_idx].zero_()
