"""What ``inspect``, ``watch`` and ``serve`` open when ``--db`` is given: the ledger, the recorder that
writes into it (with the folder where pictures are kept), and the message sinks fed from it."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

from lwcnn.runtime.engine import Inspector
from lwcnn.station.ledger import Ledger, open_ledger
from lwcnn.station.messages import Deliverer, open_sinks
from lwcnn.station.records import Recorder

#: Where pictures are kept for a PostgreSQL database when ``--store`` is not given.
DEFAULT_STORE = "lwcnn-results.files"


def default_station() -> str:
    """This machine's name: the station's, unless ``--station`` names it."""
    return socket.gethostname() or "station"


def default_store(db: str) -> Path:
    """``results.db`` keeps its pictures in ``results.files/`` beside it; a database server in
    ``./lwcnn-results.files``."""
    if db.startswith(("postgresql://", "postgres://")):
        return Path(DEFAULT_STORE)
    path = Path(db).expanduser()
    return path.with_name(path.stem + ".files")


@dataclass
class StationOutputs:
    """An open ledger, its recorder and the deliverers of its sinks; :meth:`close` when done."""

    ledger: Ledger
    recorder: Recorder
    deliverers: list[Deliverer] = field(default_factory=list)

    def close(self, flush_s: float = 5.0) -> None:
        """Deliver what is pending (up to ``flush_s`` per sink), then close everything."""
        self.recorder.close()  # the pictures still being drawn
        for deliverer in self.deliverers:
            deliverer.stop(flush_s)
        self.ledger.close()


def open_outputs(
    db: str,
    inspector: Inspector,
    source: str,
    station: str | None = None,
    store: str | Path | None = None,
    keep: str = "defective",
    mqtt: str | None = None,
    webhook: str | None = None,
    mqtt_prefix: str = "lwcnn",
) -> StationOutputs:
    """Open the ledger at ``db`` for ``inspector``'s results, and the sinks (MQTT, webhook)."""
    station = station or default_station()
    sinks = open_sinks(mqtt, webhook, station, mqtt_prefix)
    ledger = open_ledger(db)
    recorder = Recorder(ledger, inspector, station, source, store or default_store(db), keep)
    deliverers = [Deliverer(ledger, sink, station) for sink in sinks]
    for deliverer in deliverers:
        recorder.add_listener(deliverer.wake)
    return StationOutputs(ledger, recorder, deliverers)
