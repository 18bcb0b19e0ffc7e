from __future__ import annotations

import copy

import torch
from torch import nn

from dynmix.train.syncbn import GlobalBatchNorm1d, convert_global_batchnorm


def test_conversion_keeps_parameters_keys_and_single_process_behaviour() -> None:
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)))
    model = copy.deepcopy(plain)
    keys, weight = list(model.state_dict()), model[1].weight
    convert_global_batchnorm(model)
    assert isinstance(model[1], GlobalBatchNorm1d) and isinstance(model[2][1], GlobalBatchNorm1d)
    assert model[1].weight is weight and list(model.state_dict()) == keys
    x = torch.randn(16, 3)
    torch.testing.assert_close(model(x), plain(x))  # without a process group it is plain BatchNorm
    torch.testing.assert_close(model[2][1].running_var, plain[2][1].running_var)
    model.eval()
    plain.eval()
    torch.testing.assert_close(model(x), plain(x))
