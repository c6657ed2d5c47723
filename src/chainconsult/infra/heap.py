"""Keeps the cyclic garbage collector off the objects the app builds at start-up.

Under load, objects of in-flight requests live through young collections and are promoted to
the oldest generation; CPython then runs a full collection whenever those promotions reach a
quarter of the old generation, and a full collection walks every object of the process: the
imported modules, the routes, the models and schemas, the metric children. On our app that
was a 110-150 ms stop of the event loop about once a second under a directory read at 64
connections, the whole p99 of that read (140 ms before, 25 ms after:
docs/decisions/0005-frozen-startup-heap.md).
``gc.freeze()`` moves everything alive at the end of start-up into a permanent generation that
collections skip, so a full collection walks only what the requests have left.

Nothing is lost: freezing only skips scanning, reference counting still frees what it frees,
and ``gc.unfreeze()`` at shutdown hands the start-up objects back to the collector (tests and
embedded uses start and stop several apps in one process)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def startup_objects_frozen() -> Iterator[None]:
    """Collect the start-up garbage once, then freeze what is left until the block ends."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
