from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

from chainconsult.experts.vocabulary import Chain, ChainList, Currency, Money, SkillList
from chainconsult.infra.request_models import FromText, JsonInt, RequestModel
from chainconsult.infra.text import MultiLine, SingleLine
from chainconsult.models.experts import ApplicationStatus

Headline = Annotated[str, SingleLine(min_length=5, max_length=160)]
Bio = Annotated[str, MultiLine(min_length=20, max_length=5000)]
WalletAddress = Annotated[str, SingleLine(min_length=2, max_length=128)]
DecisionNote = Annotated[str, MultiLine(max_length=2000)]
PortfolioLink = Annotated[HttpUrl, Field(max_length=2048)]


class ApplicationRequest(RequestModel):
    """An application to become an expert. Resubmitting after a rejection starts a new
    revision; the earlier ones are kept."""

    headline: Headline = Field(description="One line shown under the name in the directory.")
    bio: Bio = Field(description="What you have built and audited; searchable in the directory.")
    skills: SkillList
    chains: ChainList
    hourly_rate: Money
    years_experience: JsonInt = Field(ge=0, le=70)
    portfolio_links: list[PortfolioLink] = Field(
        default_factory=list, max_length=10, description="http(s) URLs only."
    )
    wallet_address: WalletAddress | None = Field(
        None,
        description="Optional payout wallet, validated for `wallet_chain` (EVM: 0x + 40 hex, "
        "EIP-55 checksum when mixed case; bitcoin, solana, cosmos, polkadot, near, sui, aptos, "
        "starknet by their own formats).",
    )
    wallet_chain: FromText[Chain] | None = Field(
        None, description="Chain of the payout wallet; defaults to the first of `chains`."
    )

    @model_validator(mode="after")
    def _default_wallet_chain(self) -> ApplicationRequest:
        if self.wallet_address is not None and self.wallet_chain is None:
            self.wallet_chain = self.chains[0]
        return self


class ApplicationResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    account_id: uuid.UUID
    revision: int = Field(description="1 for the first application, +1 per resubmission.")
    status: ApplicationStatus
    headline: str
    bio: str
    skills: list[str]
    chains: list[str]
    hourly_rate: Money
    years_experience: int
    portfolio_links: list[str]
    wallet_address: str | None
    wallet_chain: str | None
    wallet_verified: bool = Field(
        False,
        description="Whether the author proved the payout wallet by Sign-In with Ethereum "
        "(POST /me/wallets); payouts go only to a verified wallet.",
    )
    decision_note: str | None
    decided_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @model_validator(mode="before")
    @classmethod
    def _from_row(cls, value: Any) -> Any:
        if hasattr(value, "hourly_rate_amount"):
            return {
                **{
                    name: getattr(value, name)
                    for name in cls.model_fields
                    if name != "hourly_rate" and hasattr(value, name)
                },
                "hourly_rate": {
                    "amount": Decimal(value.hourly_rate_amount),
                    "currency": Currency(value.hourly_rate_currency),
                },
            }
        return value


class DecisionRequest(RequestModel):
    decision: Literal["approve", "reject"]
    note: DecisionNote = Field("", description="Shown to the applicant; say why on a rejection.")
