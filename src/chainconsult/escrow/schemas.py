from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_serializer

from chainconsult.experts.vocabulary import Amount
from chainconsult.infra.request_models import FromIsoText, JsonInt, RequestModel
from chainconsult.infra.text import MultiLine, SingleLine
from chainconsult.models.escrow import MilestoneStatus

TokenSymbol = Annotated[str, SingleLine(min_length=2, max_length=16)]


PLAN_MAX_MILESTONES = 50
"""A plan has 1 to this many milestones (the API's body and the page's form)."""


DUE_DATE_MAX_YEARS = 5
"""How far ahead a milestone may fall due. The escrow's termination time (the last due date
plus ESCROW_TERMINATION_DAYS) must be a future uint64 timestamp, and money locked for more
than a few years is a plan mistake rather than a plan."""


def due_date_problem(value: dt.date) -> str | None:
    """Why a milestone cannot fall due on ``value`` (None when it can): the one rule of the
    plan's due dates, checked when a plan is saved and again when its deposit is prepared."""
    today = dt.datetime.now(dt.UTC).date()
    if value < today:
        return "the due date has passed"
    try:
        latest = today.replace(year=today.year + DUE_DATE_MAX_YEARS)
    except ValueError:  # 29 February
        latest = today.replace(year=today.year + DUE_DATE_MAX_YEARS, day=28)
    if value > latest:
        return f"the due date is more than {DUE_DATE_MAX_YEARS} years ahead"
    return None


def _plannable(value: dt.date) -> dt.date:
    problem = due_date_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


class MilestoneInput(RequestModel):
    title: Annotated[str, SingleLine(min_length=2, max_length=200)]
    amount: Amount
    due_date: Annotated[FromIsoText[dt.date], AfterValidator(_plannable)] = Field(
        description=f"ISO date, from today (UTC) to {DUE_DATE_MAX_YEARS} years ahead."
    )


class MilestoneResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    project_id: uuid.UUID
    position: int
    title: str
    amount: Decimal
    due_date: dt.date
    status: MilestoneStatus
    token: str | None = Field(None, validation_alias="token_symbol")
    amount_units: Decimal | None = Field(None, description="In the token's smallest unit.")

    @field_serializer("amount")
    def _money(self, value: Decimal) -> str:
        return f"{value:.2f}"

    @field_serializer("amount_units")
    def _units(self, value: Decimal | None) -> str | None:
        return None if value is None else str(int(value))


class MilestoneList(BaseModel):
    """The plan in the API's list envelope (DESIGN.md: lists are `{data, next_cursor}`); a
    `PUT` takes the bare array `[{title, amount, due_date}]` instead (docs/escrow.md)."""

    data: list[MilestoneResponse] = Field(description="The milestones in plan order.")
    next_cursor: None = Field(
        None, description="Always null: a plan (at most 50 milestones) is never paged."
    )
    currency: str = Field(description="The accepted price's currency, of every `amount`.")
    total: Decimal = Field(description="The sum of the amounts (the accepted price).")

    @field_serializer("total")
    def _money(self, value: Decimal) -> str:
        return f"{value:.2f}"


class EscrowRequest(RequestModel):
    token: TokenSymbol | None = Field(
        None,
        description="Symbol of a configured stablecoin (ESCROW_TOKENS); default: the first "
        "that fits the project's currency.",
    )


class Transaction(BaseModel):
    """An unsigned transaction for the caller's wallet: send as is (value in wei)."""

    to: str
    data: str
    value: str = "0"


class EscrowFunding(BaseModel):
    chain_id: int
    contract: str
    token: str
    token_address: str
    amount_units: str
    termination_time: int
    transactions: list[Transaction]


class Transactions(BaseModel):
    transactions: list[Transaction]


class DisputeRequest(RequestModel):
    reason: Annotated[str, MultiLine(min_length=5, max_length=5000)]
    """Kept for the arbiter per party with its keccak-256, the hash the transaction carries."""


class ResolutionRequest(RequestModel):
    expert_share_bps: JsonInt = Field(ge=0, le=10_000)
    note: Annotated[str, MultiLine(min_length=1, max_length=5000)]


class ResolutionQueued(BaseModel):
    milestone_id: uuid.UUID
    status: str = "queued"


class MilestoneChainState(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    title: str
    status: MilestoneStatus
    token: str | None = Field(None, validation_alias="token_symbol")
    token_address: str | None
    amount_units: Decimal | None
    payout_address: str | None
    depositor_address: str | None
    funded_block: int | None
    settled_block: int | None
    payee_units: Decimal | None
    client_units: Decimal | None
    platform_fee_units: Decimal | None
    arbiter_fee_units: Decimal | None
    resolution_tx_hash: str | None

    @field_serializer(
        "amount_units", "payee_units", "client_units", "platform_fee_units", "arbiter_fee_units"
    )
    def _units(self, value: Decimal | None) -> str | None:
        return None if value is None else str(int(value))


class EscrowState(BaseModel):
    chain_id: int
    contract: str
    confirmations: int
    confirmed_block: int | None = Field(
        description="The newest block the platform has applied (confirmed) events up to."
    )
    milestones: list[MilestoneChainState]
