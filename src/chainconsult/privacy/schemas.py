from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, Field

from chainconsult.infra.request_models import RequestModel


class ExportResponse(BaseModel):
    account_id: uuid.UUID
    exported_at: dt.datetime
    tables: dict[str, list[dict[str, Any]]] = Field(
        description="Every stored row about you, by table, the job queue's included (emails "
        "sent to you, jobs about you and their errors); secrets such as password and token "
        "hashes left out."
    )


class ErasureRequest(RequestModel):
    password: str = Field(min_length=1, max_length=256, description="Your current password.")
