import pytest
import torch


@pytest.fixture
def product_dtypes(monkeypatch) -> set:
    """The dtypes of every ``F.linear`` product from here on (the trainer's forward passes),
    filled in as they run."""
    seen, linear = set(), torch.nn.functional.linear

    def recorded(*args, **kwargs):
        out = linear(*args, **kwargs)
        seen.add(out.dtype)
        return out

    monkeypatch.setattr(torch.nn.functional, "linear", recorded)
    return seen
