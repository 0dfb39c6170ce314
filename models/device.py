"""Which torch device a model trains on: CUDA when present, unless a setting says otherwise."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar


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


class SharedExclusiveLock:
    """Any number of shared holders at once, or one exclusive holder, granted in the order
    asked: a shared request behind a waiting exclusive one waits for it, and an exclusive
    holder that asks again queues behind the shared requests that waited for it, so neither
    kind starves the other. Not re-entrant: a thread must not ask while it holds it."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._next_ticket = 0
        self._serving = 0  # the oldest ticket not yet granted
        self._shared = 0
        self._exclusive = False

    def _take_ticket(self) -> int:
        ticket = self._next_ticket
        self._next_ticket += 1
        return ticket

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._changed:
            ticket = self._take_ticket()
            while ticket != self._serving or self._exclusive:
                self._changed.wait()
            self._shared += 1
            self._serving += 1
            self._changed.notify_all()
        try:
            yield
        finally:
            with self._changed:
                self._shared -= 1
                self._changed.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._changed:
            ticket = self._take_ticket()
            while ticket != self._serving or self._exclusive or self._shared:
                self._changed.wait()
            self._exclusive = True
            self._serving += 1
        try:
            yield
        finally:
            with self._changed:
                self._exclusive = False
                self._changed.notify_all()


# torch.export, which MLflow's default "pt2" format runs to save a torch model, switches
# torch's process-wide backend flags while it traces (torch.backends.mkldnn.enabled reads
# False from other threads meanwhile). An LSTM step in another thread then takes the plain
# kernels instead of oneDNN's and gives results that differ in the last bits: with branches
# running concurrently, the recommender's model logging made two runs of one night publish
# different demand forecasts. Torch computation in branches holds this lock shared
# (`holds_torch_backends`), exporting a model holds it exclusively.
TORCH_BACKENDS = SharedExclusiveLock()

P = ParamSpec("P")
R = TypeVar("R")


def holds_torch_backends(function: Callable[P, R]) -> Callable[P, R]:
    """Run `function` holding TORCH_BACKENDS shared, so no model export flips torch's
    backend flags under it."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with TORCH_BACKENDS.shared():
            return function(*args, **kwargs)

    return wrapper
