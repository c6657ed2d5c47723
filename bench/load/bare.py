"""The floor: one FastAPI route returning fixed bytes (the body of a cached directory
response, fetched from chainconsult first), served by granian with the options
`chainconsult serve` uses, one worker. `cached_read` RPS over this route's RPS says how much
of the server's capacity chainconsult's own work takes.

    .venv/bin/python -m bench.load.bare --port 8100 --body-file body.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fastapi import FastAPI, Response


def build_app(body: bytes) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/api/v2/experts")
    async def experts() -> Response:
        return Response(content=body, media_type="application/json")

    return app


def main(argv: list[str] | None = None) -> None:
    from chainconsult.commands.serve import granian_server

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body-file", type=Path, required=True)
    args = parser.parse_args(argv)
    app = build_app(args.body_file.read_bytes())
    # The same server and protocol options as `chainconsult serve` (commands/serve.py);
    # the worker is forked from this process, so it is handed the app itself.
    server = granian_server(
        None,
        host="127.0.0.1",
        port=args.port,
        workers=1,
        header_timeout_seconds=10,
        keep_alive_seconds=5,
        grace_seconds=5,
    )
    server.serve(target_loader=lambda: app, wrap_loader=False)


if __name__ == "__main__":
    main()
