"""Keeps the cyclic garbage collector off the objects the app builds at start-up, and off the
objects of requests in flight.

Under load, objects of in-flight requests live through young collections and are promoted to
the oldest generation; CPython then runs a full collection whenever those promotions reach a
quarter of the old generation, and a full collection walks every object of the process: the
imported modules, the routes, the models and schemas, the metric children. On our app that
was a 110-150 ms stop of the event loop about once a second under a directory read at 64
connections, the whole p99 of that read (140 ms before, 25 ms after:
docs/decisions/0005-frozen-startup-heap.md).
``gc.freeze()`` moves everything alive at the end of start-up into a permanent generation that
collections skip, so a full collection walks only what the requests have left.

A young collection runs whenever 700 more container objects were made than freed (CPython's
default); a busy worker's requests in flight hold more than that, so it ran every dozen
requests, walked objects that were all alive, promoted them, and the older collections
followed: 5-13 % of a cached read's CPU. Our requests leave next to no cyclic garbage, so a
young collection now waits for ``YOUNG_THRESHOLD`` (docs/decisions/0050-young-gc-threshold.md).

Nothing is lost: freezing only skips scanning, reference counting still frees what it frees,
and at shutdown the collector gets its thresholds and the start-up objects back (tests and
embedded uses start and stop several apps in one process)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 50_000
"""Container objects made and not yet freed that start a young collection (CPython: 700)."""


@contextmanager
def startup_objects_frozen() -> Iterator[None]:
    """Collect the start-up garbage once, freeze what is left and raise the young
    collection's threshold until the block ends."""
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
