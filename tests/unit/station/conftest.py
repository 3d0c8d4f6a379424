"""Fixtures of the station tests: the bundled models, a real PostgreSQL server and a real mosquitto
broker (started once per module; skipped with the reason where they are not installed)."""

from __future__ import annotations

import pytest

from lwcnn.runtime import Inspector
from tests.services import Mosquitto, Postgres


@pytest.fixture(scope="session")
def neu_inspector() -> Inspector:
    return Inspector("neu", threads=1)


@pytest.fixture(scope="session")
def seg_inspector() -> Inspector:
    return Inspector("kolektorsdd", threads=1)


@pytest.fixture(scope="session")
def postgres():
    pytest.importorskip("psycopg", reason="PostgreSQL tests need psycopg (the line extra)")
    try:
        server = Postgres()
    except FileNotFoundError as missing:
        pytest.skip(f"needs a PostgreSQL server ({missing}); .ci/run installs Debian's postgresql")
    yield server
    server.stop()


@pytest.fixture
def mosquitto():
    pytest.importorskip("paho.mqtt", reason="MQTT tests need paho-mqtt (the line extra)")
    try:
        broker = Mosquitto()
    except FileNotFoundError as missing:
        pytest.skip(f"needs the mosquitto broker ({missing}); .ci/run installs Debian's mosquitto")
    yield broker
    broker.close()
