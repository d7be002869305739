import os

import pytest
import torch

os.environ.setdefault("PYMSDE_NO_PROGRESS", "1")


@pytest.fixture(autouse=True)
def _deterministic_torch():
    """Every test starts from the same global RNG state and default dtype."""
    torch.manual_seed(0)
    dtype = torch.get_default_dtype()
    yield
    torch.set_default_dtype(dtype)
