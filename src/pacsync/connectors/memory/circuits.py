"""In-memory circuit breaker states, with the store's compare-and-set rules."""

from __future__ import annotations

import threading

from pacsync.domain.circuit import CircuitState, same_state


class MemoryCircuitStore:
    """A :class:`pacsync.ports.CircuitStore` in a dict; every operation holds one lock."""

    def __init__(self) -> None:
        self.circuits: dict[str, CircuitState] = {}
        self._lock = threading.Lock()

    def get(self, connection: str) -> CircuitState | None:
        with self._lock:
            return self.circuits.get(connection)

    def all(self) -> list[CircuitState]:
        with self._lock:
            return [self.circuits[name] for name in sorted(self.circuits)]

    def compare_and_set(self, expected: CircuitState | None, new: CircuitState) -> bool:
        if expected is not None and expected.connection != new.connection:
            raise ValueError(f"{expected.connection!r} is not {new.connection!r}")
        with self._lock:
            if not same_state(self.circuits.get(new.connection), expected):
                return False
            self.circuits[new.connection] = new
            return True

    def reset(self, connection: str) -> None:
        with self._lock:
            self.circuits.pop(connection, None)
