"""Which torch device a model trains on: CUDA when present, unless a setting says otherwise."""

from __future__ import annotations

import threading


def choose_device(requested: str, cuda_available: bool) -> str:
    """Resolve the `device` setting ('auto', 'cpu', 'cuda', 'cuda:N') against the machine.

    Raises:
        ValueError: CUDA was asked for explicitly but is not available.
    """
    if requested == "auto":
        return "cuda" if cuda_available else "cpu"
    if requested.startswith("cuda") and not cuda_available:
        raise ValueError(f"device {requested!r} requested but CUDA is not available here")
    return requested


def torch_device(requested: str):  # noqa: ANN201 - returns torch.device; torch imported lazily
    """The torch.device for a setting, asking torch whether CUDA is present."""
    import torch

    return torch.device(choose_device(requested, torch.cuda.is_available()))


# torch's global random generator is shared by every thread of a process. Branches train
# concurrently in threads, so the code that seeds it and draws from it (module weight
# initialisation, torch.svd_lowrank) holds this lock; everything else draws from its own
# torch.Generator.
GLOBAL_RNG_LOCK = threading.Lock()
