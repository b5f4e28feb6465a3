"""Run the network tests on one thread: their tensors are tiny, and on a shared machine
several threads spin more than they compute."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
