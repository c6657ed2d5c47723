from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, Field, model_validator

from chainconsult.experts.vocabulary import Money
from chainconsult.infra.request_models import JsonInt, RequestModel
from chainconsult.infra.text import MultiLine
from chainconsult.models.projects import ProposalStatus

CoverLetter = Annotated[str, MultiLine(min_length=20, max_length=10_000)]


class ProposalRequest(RequestModel):
    cover_letter: CoverLetter
    price: Money = Field(description="Total price, in the project's budget currency.")
    estimated_days: JsonInt = Field(ge=1, le=3650)


class ProposalResponse(BaseModel):
    id: uuid.UUID
    project_id: uuid.UUID
    expert_id: uuid.UUID = Field(description="Also the expert's id in the directory.")
    cover_letter: str
    price: Money
    estimated_days: int
    status: ProposalStatus
    created_at: dt.datetime
    updated_at: dt.datetime
    decided_at: dt.datetime | None

    @model_validator(mode="before")
    @classmethod
    def _from_row(cls, value: Any) -> Any:
        if hasattr(value, "price_amount"):
            fields = {n: getattr(value, n) for n in cls.model_fields if hasattr(value, n)}
            return {
                **fields,
                "price": {"amount": Decimal(value.price_amount), "currency": value.price_currency},
            }
        return value
