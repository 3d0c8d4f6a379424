"""``lwcnn serve``: the inspection service (HTTP API and web page) on ONNX Runtime or OpenVINO."""

from __future__ import annotations

import argparse
import os

from lwcnn.cli.inspect import add_engine_options
from lwcnn.cli.watch import add_ledger_options
from lwcnn.errors import ConfigError
from lwcnn.limits import DEFAULT_MAX_PIXELS

API_KEY_ENV = "LWCNN_API_KEY"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="HTTP inspection service with a web page",
        description=(
            "Serve a model over HTTP: POST /v1/inspect (an image upload, field 'image'), GET /v1/health, "
            "GET /v1/model, the OpenAPI schema at /openapi.json, and a web page at /; with --db every "
            "verdict is recorded and a dashboard is served at /dashboard (live results, defect rate, "
            "what-if threshold, reviews). Binds to "
            f"127.0.0.1 unless --host says otherwise. An API key (--api-key or ${API_KEY_ENV}) makes /v1 "
            "requests (but health) need the header X-API-Key."
        ),
    )
    parser.add_argument(
        "--weights", default=None, help="model: .onnx file, bundled name (default: neu), run folder"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--api-key", default=None, help=f"require this key (default: ${API_KEY_ENV} if set)")
    parser.add_argument("--workers", type=int, default=2, help="images inspected at once (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="inference threads per image (default 1)")
    add_engine_options(parser, with_torch=False)
    parser.add_argument("--max-body-mb", type=float, default=20.0, help="largest upload in MB (default 20)")
    parser.add_argument(
        "--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="largest image in pixels (default 40M)"
    )
    parser.add_argument(
        "--max-queue",
        type=int,
        default=8,
        help="inspections that may wait for a worker; more get 503 (default 8)",
    )
    parser.add_argument(
        "--allowed-hosts", default=None, metavar="NAMES",
        help="comma-separated Host names to answer ('*': any). Default: with an API key any; without one "
        "only the names of the bound address (loopback names; this machine's names for 0.0.0.0)",
    )  # fmt: skip
    parser.add_argument(
        "--body-timeout", type=float, default=30.0, help="seconds a request body may take (30)"
    )
    parser.add_argument(
        "--header-timeout", type=float, default=10.0, help="seconds a request header may take (10)"
    )
    parser.add_argument("--max-connections", type=int, default=64, help="open connections at most (64)")
    add_ledger_options(parser)
    parser.add_argument(
        "--ok-class", action="append", default=None, metavar="CLASS",
        help="a classifier class that means 'no defect', or a defect type that may pass (repeatable)",
    )  # fmt: skip
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from lwcnn.runtime import Inspector
    from lwcnn.serve import ServiceSettings, create_app
    from lwcnn.serve.server import uvicorn_options

    positive = (args.workers, args.threads, args.max_body_mb, args.max_pixels, args.body_timeout,
                args.header_timeout, args.max_connections)  # fmt: skip
    if min(positive) <= 0 or args.max_queue < 0:
        raise ConfigError(
            "--workers, --threads, --max-body-mb, --max-pixels, --body-timeout, --header-timeout and "
            "--max-connections must be positive, --max-queue at least 0"
        )
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be 1..65535, got {args.port}")
    api_key = service_key(args.api_key)
    settings = ServiceSettings(
        max_body_bytes=int(args.max_body_mb * 2**20),
        max_pixels=args.max_pixels,
        workers=args.workers,
        max_queue=args.max_queue,
        api_key=api_key,
        allowed_hosts=allowed_hosts(args.allowed_hosts, args.host, api_key is not None),
        body_timeout_s=args.body_timeout,
        header_timeout_s=args.header_timeout,
        max_connections=args.max_connections,
    )
    inspector = Inspector(
        args.weights, backend=args.backend, threads=args.threads, max_pixels=args.max_pixels,
        precision=args.precision, workers=args.workers, ok_classes=args.ok_class,
    )  # fmt: skip
    outputs = None
    if args.db is not None:
        from lwcnn.station.outputs import open_outputs

        outputs = open_outputs(args.db, inspector, "serve", args.station, args.store, args.keep, args.mqtt,
                               args.webhook, args.mqtt_prefix)  # fmt: skip
    elif args.mqtt or args.webhook:
        raise ConfigError("--mqtt and --webhook send what is recorded: give --db too")
    app = create_app(inspector, settings, outputs)
    key_note = "an API key is required" if api_key else "no API key"
    chosen = f" ({inspector.engine_choice.reason})" if inspector.engine_choice is not None else ""
    print(f"lwcnn serve: {inspector.engine}{chosen}", flush=True)
    print(f"lwcnn serve: {inspector.model_name} on http://{args.host}:{args.port}/ ({key_note})", flush=True)
    if outputs is not None:
        print(f"lwcnn serve: every verdict recorded in {outputs.ledger.where}; dashboard on "
              f"http://{args.host}:{args.port}/dashboard", flush=True)  # fmt: skip
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="info", **uvicorn_options(settings))
    finally:
        if outputs is not None:
            outputs.close()
    return 0


def service_key(given: str | None) -> str | None:
    """The API key from --api-key or the environment; an empty one is an error, not "no key"."""
    if given is not None:
        if not given.strip():
            raise ConfigError("--api-key is empty: give a key, or leave the option out to serve without one")
        return given
    from_env = os.environ.get(API_KEY_ENV)
    if from_env is not None and not from_env.strip():
        raise ConfigError(f"${API_KEY_ENV} is set but empty: give a key, or unset it to serve without one")
    return from_env


def allowed_hosts(spec: str | None, host: str, keyed: bool) -> frozenset[str] | None:
    """The Host names to answer (None: any): the --allowed-hosts list, else any when a key guards
    the service, else the bound address's own names (DNS rebinding needs a name of the attacker's)."""
    from lwcnn.serve.server import bound_host_names

    if spec is not None:
        names = {name.strip().lower().strip("[]") for name in spec.split(",") if name.strip()}
        if not names:
            raise ConfigError("--allowed-hosts is empty: give host names, or '*' for any")
        return None if "*" in names else frozenset(names)
    return None if keyed else bound_host_names(host)
