"""Shared by the interpretability tests: tiny models run on one PyTorch thread."""

import pytest

from clapkit.testing import single_thread_torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    with single_thread_torch():
        yield
