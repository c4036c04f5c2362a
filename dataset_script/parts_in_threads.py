"""Independent parts of a torch computation on a CPU, one part per torch thread, each part on one thread.

Code made of thousands of small operations (MTCNN's is) loses more than it gains from torch's own threads: they
meet at the end of every operation, and on a busy machine, where one of them often waits for a core, each meeting
costs more than the second core gives. Parts that each run on a thread of their own never wait for one another.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

Item, Result = TypeVar("Item"), TypeVar("Result")


def _single_threaded_pool(threads: int) -> ThreadPoolExecutor:
    """A pool of ``threads`` threads that each run torch with one thread; the process's count is left as it was."""
    ready = threading.Barrier(threads)

    def settle(_) -> None:
        torch.set_num_threads(1)  # this thread's count, and the process's for threads that start later
        torch.ones(1 << 16).sum()  # torch settles a thread's count at its first parallel loop: settle it at one now
        ready.wait()  # every thread of the pool settles, not one twice

    pool = ThreadPoolExecutor(threads, thread_name_prefix="torch-part")
    list(pool.map(settle, range(threads)))
    torch.set_num_threads(threads)
    return pool


def _in_inference_mode(function: Callable[[Item], Result], item: Item) -> Result:
    with torch.inference_mode():  # a thread's own mode: the caller's does not reach the pool's threads
        return function(item)


class PartsInThreads:
    """``map(function, items)``: with several torch threads on a CPU, in a pool of as many threads of one torch
    thread each (made on first need, in inference mode); with one torch thread, or on another device, in turn."""

    def __init__(self, device: torch.device):
        self.device = device
        self._pool: ThreadPoolExecutor | None = None
        self._owner, self._lock = (0, 0), threading.Lock()  # (threads, process id) the pool was made for

    def map(self, function: Callable[[Item], Result], items: Iterable[Item]) -> list[Result]:
        threads, items = torch.get_num_threads(), list(items)
        if self.device.type != "cpu" or threads == 1 or len(items) == 1:
            return [function(item) for item in items]
        with self._lock:
            if self._owner != (threads, os.getpid()):  # a forked child has none of its parent's threads
                if self._pool is not None and self._owner[1] == os.getpid():
                    self._pool.shutdown(wait=False)
                self._pool, self._owner = _single_threaded_pool(threads), (threads, os.getpid())
            pool = self._pool
        return list(pool.map(lambda item: _in_inference_mode(function, item), items))
