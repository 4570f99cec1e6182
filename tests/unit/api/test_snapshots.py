from __future__ import annotations

import threading
import time

from pydantic import BaseModel

from pacsync.api.snapshots import Snapshots


class Page(BaseModel):
    n: int


def test_a_page_is_built_once_per_time_to_live() -> None:
    now = [0.0]
    built: list[int] = []
    snapshots = Snapshots(ttl_s=0.5, clock=lambda: now[0])

    def build() -> Page:
        built.append(1)
        return Page(n=len(built))

    assert snapshots.json("k", build).body == b'{"n":1}'
    now[0] = 0.4
    assert snapshots.json("k", build).body == b'{"n":1}'
    now[0] = 0.5
    assert snapshots.json("k", build).body == b'{"n":2}'
    assert snapshots.json("other", build).body == b'{"n":3}'


def test_clear_forgets_every_page() -> None:
    snapshots = Snapshots(ttl_s=60)
    count = [0]

    def build() -> Page:
        count[0] += 1
        return Page(n=count[0])

    snapshots.json("k", build)
    snapshots.clear()
    assert snapshots.json("k", build).body == b'{"n":2}'


def test_concurrent_askers_of_an_expired_page_wait_for_one_refresh() -> None:
    snapshots = Snapshots(ttl_s=60)
    calls = [0]

    def slow() -> Page:
        calls[0] += 1
        time.sleep(0.2)
        return Page(n=7)

    bodies: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: bodies.append(bytes(snapshots.json("k", slow).body)))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls[0] == 1
    assert bodies == [b'{"n":7}'] * 8


def test_the_oldest_pages_are_dropped_beyond_the_limit() -> None:
    snapshots = Snapshots(ttl_s=60, max_pages=2)
    counter = [0]

    def build() -> Page:
        counter[0] += 1
        return Page(n=counter[0])

    for key in ("a", "b", "c"):
        snapshots.json(key, build)
    assert snapshots.json("a", build).body == b'{"n":4}'  # "a" was dropped and rebuilt
    assert snapshots.json("c", build).body == b'{"n":3}'
