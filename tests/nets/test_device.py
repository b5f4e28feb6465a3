"""Choosing where networks train: the CPU, or a CUDA GPU only when there is one."""

from __future__ import annotations

import pytest
import torch

from clapkit.errors import ValidationError
from clapkit.nets.device import resolve_device

NO_GPU = not torch.cuda.is_available()


def test_cpu_and_auto_resolve_to_a_device_this_torch_has():
    assert resolve_device(None) == resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")).type == "cpu"
    assert resolve_device("auto").type == ("cpu" if NO_GPU else "cuda")


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("gpu", "unknown device 'gpu'"),
        ("meta", "trains on 'cpu' or 'cuda' only"),
        ("cuda:99", "CUDA GPU"),
    ],
)
def test_unusable_devices_are_refused_by_name(device, message):
    with pytest.raises(ValidationError, match=message):
        resolve_device(device)


@pytest.mark.skipif(not NO_GPU, reason="this machine has a CUDA GPU")
def test_asking_for_cuda_on_a_cpu_build_says_so():
    with pytest.raises(ValidationError, match="sees no CUDA GPU; use --device cpu"):
        resolve_device("cuda")
