"""The time loops' process settings: what ``compute_threads`` leaves behind after a loop."""

import torch

from pymsde.systems import solvers


def test_malloc_is_not_left_on_fixed_small_thresholds(monkeypatch):
    """Setting a glibc threshold switches its dynamic rule off for good. After a loop the
    thresholds must stay where the dynamic rule grows to (mmap 32 MiB, trim 64 MiB): the
    documented start values (128 KiB) made every later allocation above 128 KiB a fresh mmap,
    and the demo's training after its simulation 2.3 times slower."""
    calls = []
    monkeypatch.delenv("PYMSDE_NO_MALLOC_TUNING", raising=False)
    monkeypatch.setattr(solvers, "_mallopt", lambda settings: calls.append(dict(settings)) or True)
    with solvers.compute_threads():
        assert calls == [{-3: 64 << 20, -1: 512 << 20}]             # inside: keep temporaries
    assert calls[-1] == {-3: 32 << 20, -1: 64 << 20}                  # after: the dynamic rule's values
    assert min(calls[-1].values()) >= 32 << 20


def test_threads_are_restored_after_a_loop(monkeypatch):
    monkeypatch.setenv("PYMSDE_SIM_THREADS", "1")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with solvers.compute_threads():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
