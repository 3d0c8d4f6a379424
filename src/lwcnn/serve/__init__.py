"""The inspection service: an HTTP API (FastAPI) and a web page over the inspection engine.
Runtime only: no torch."""

from lwcnn.serve.app import ServiceSettings, create_app

__all__ = ["ServiceSettings", "create_app"]
