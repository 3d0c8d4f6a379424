"""``lwcnn serve``: the inspection service (HTTP API and web page) on ONNX Runtime."""

from __future__ import annotations

import argparse
import os

API_KEY_ENV = "LWCNN_API_KEY"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="HTTP inspection service with a web page",
        description=(
            "Serve a model over HTTP: POST /v1/inspect (an image upload, field 'image'), GET /v1/health, "
            "GET /v1/model, the OpenAPI schema at /openapi.json, and a web page at /. Binds to "
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
    parser.add_argument("--max-body-mb", type=float, default=20.0, help="largest upload in MB (default 20)")
    parser.add_argument(
        "--max-pixels", type=int, default=40_000_000, help="largest image in pixels (default 40M)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from lwcnn.runtime import Inspector
    from lwcnn.serve import ServiceSettings, create_app

    if args.workers < 1 or args.threads < 1 or args.max_body_mb <= 0 or args.max_pixels < 1:
        raise ValueError("--workers, --threads, --max-body-mb and --max-pixels must be positive")
    if not 0 < args.port < 65536:
        raise ValueError(f"--port must be 1..65535, got {args.port}")
    api_key = args.api_key or os.environ.get(API_KEY_ENV) or None
    settings = ServiceSettings(
        max_body_bytes=int(args.max_body_mb * 2**20),
        max_pixels=args.max_pixels,
        workers=args.workers,
        api_key=api_key,
    )
    inspector = Inspector(args.weights, threads=args.threads)
    app = create_app(inspector, settings)
    key_note = "an API key is required" if api_key else "no API key"
    print(f"lwcnn serve: {inspector.model_name} on http://{args.host}:{args.port}/ ({key_note})", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
