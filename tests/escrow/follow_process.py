"""One run of the escrow watcher in a process of its own (the worker the kill test kills).
Settings come from the environment, as a worker's do."""

from __future__ import annotations

import asyncio

from chainconsult.config import load_settings
from chainconsult.escrow.watcher import chain_client, follow_chain
from chainconsult.infra.db.engine import build_engine, build_sessionmaker

APPLICATION_NAME = "escrow-watcher-under-test"


async def main() -> None:
    settings = load_settings()
    engine = build_engine(settings.database, application_name=APPLICATION_NAME)
    client = chain_client(settings.escrow)
    try:
        print(await follow_chain(build_sessionmaker(engine), settings.escrow, client), flush=True)
    finally:
        await client.close()
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
