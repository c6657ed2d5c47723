"""`chainconsult serve` with the probe routes mounted, run as a real server process by the
graceful shutdown tests: ``python -m tests.infra.db.serve_with_probes serve --port N``."""

from __future__ import annotations

import sys
from typing import Any

import chainconsult.app as app_module
from tests.infra.db.probe_routes import router

_create_app = app_module.create_app


def create_app_with_probes(settings: Any = None) -> Any:
    app = _create_app(settings)
    app.include_router(router)
    return app


# uvicorn imports "chainconsult.app:create_app" by name in this same process (one worker).
app_module.create_app = create_app_with_probes

if __name__ == "__main__":
    from chainconsult.cli import cli

    cli(sys.argv[1:])
