"""In-process worker tests: the real engine at 32 px, the real Redis under a prefix."""

from __future__ import annotations

import pytest
import torch

from nst_core.transfer import Stylizer


@pytest.fixture(scope="session")
def engine() -> Stylizer:
    """The engine with the default weights, one torch thread (the machine is shared)."""
    torch.set_num_threads(1)
    return Stylizer(weights="original", device="cpu")
