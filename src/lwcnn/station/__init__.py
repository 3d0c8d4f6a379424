"""On the line: every verdict in a database (:mod:`ledger`), a hot folder watched (:mod:`watch`),
verdicts sent as messages (:mod:`messages`), and the operators' reviews back into training data
(:mod:`reviewed`). Runtime-only: no torch, no training code."""

from lwcnn.station.ledger import Ledger, open_ledger

__all__ = ["Ledger", "open_ledger"]
