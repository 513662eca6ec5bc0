"""The baseline for bench/registration_api.py: a bare FastAPI endpoint doing one indexed insert.

.venv/bin/python bench/registration_baseline.py --port 8101 --mongo URL --db NAME
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from pymongo import AsyncMongoClient


class Body(BaseModel):
    license_key: str
    customer: dict[str, Any]
    seller_code: str | None = None


def build(mongo_url: str, db_name: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url, tz_aware=True)
        app.state.collection = client[db_name]["baseline"]
        await app.state.collection.create_index("license_key", unique=True)
        yield
        await client.close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/baseline", status_code=201)
    async def insert(body: Body) -> dict[str, str]:
        await app.state.collection.insert_one(body.model_dump())
        return {"license_key": body.license_key}

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mongo", required=True)
    parser.add_argument("--db", required=True)
    args = parser.parse_args()
    uvicorn.run(
        build(args.mongo, args.db),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
