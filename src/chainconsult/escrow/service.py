"""The escrow's rules: who may plan, fund, release, dispute and arbitrate which milestone,
and what each step hands to a wallet. Every rule lives here once; the chain is only read
through the confirmed events the watcher applied (projection.py)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.accounts.service import Principal
from chainconsult.audit.trail import AuditTrail, RequestOrigin
from chainconsult.config import EscrowSettings, EscrowToken
from chainconsult.errors import Conflict, Forbidden, InvalidInput, NotFound, field_error
from chainconsult.escrow.contract import EscrowContract, details_hash
from chainconsult.escrow.errors import EscrowNotConfigured, MilestoneState, WalletUnverified
from chainconsult.escrow.payout import payout_wallet_verified
from chainconsult.escrow.repository import EscrowRepository
from chainconsult.escrow.schemas import (
    EscrowFunding,
    EscrowState,
    MilestoneChainState,
    MilestoneInput,
    MilestoneList,
    MilestoneResponse,
    ResolutionRequest,
    Transaction,
    Transactions,
    due_date_problem,
)
from chainconsult.models.escrow import Milestone, MilestoneStatus
from chainconsult.models.projects import Project, ProjectStatus
from chainconsult.projects.service import ProjectService

# A project priced in dollars may be paid in any dollar stablecoin; others only in their own.
_DOLLAR_TOKENS = ("USDC", "USDT", "DAI")


def follower_name(settings: EscrowSettings) -> str:
    """The chain follower's name: one cursor per chain and contract."""
    assert settings.contract is not None
    return f"escrow:{settings.chain_id}:{settings.contract.lower()}"


def token_units(amount: Decimal, decimals: int) -> int:
    units = amount.scaleb(decimals)
    if units != units.to_integral_value():
        raise InvalidInput(f"{amount} cannot be paid exactly in a token of {decimals} decimals.")
    return int(units)


class EscrowService:
    def __init__(self, session: AsyncSession, settings: EscrowSettings) -> None:
        self.session = session
        self.settings = settings
        self.repository = EscrowRepository(session)
        self.projects = ProjectService(session)

    # The plan ------------------------------------------------------------------------------

    async def plan(self, *, project_id: uuid.UUID, principal: Principal) -> MilestoneList:
        project = await self._participant(project_id, principal)
        return await self._listing(project)

    async def set_plan(
        self, *, project_id: uuid.UUID, principal: Principal, items: Sequence[MilestoneInput]
    ) -> MilestoneList:
        """Replace the plan: the owner, after acceptance, while every milestone is a draft;
        the amounts must add up to the accepted price."""
        project = await self.projects.owned(project_id, principal)
        if project.status != ProjectStatus.in_progress:
            raise Conflict("Milestones are planned once a proposal is accepted.")
        current = await self.repository.milestones(project.id, lock=True)
        if any(m.status != MilestoneStatus.draft for m in current):
            raise MilestoneState("The plan cannot change once a milestone is funded.")
        price, _currency = await self._price(project)
        total = sum((item.amount for item in items), Decimal(0))
        if total != price:
            raise InvalidInput(
                f"The milestones add up to {total:.2f}; the accepted price is {price:.2f}.",
                errors=[field_error("", f"amounts must sum to {price:.2f}")],
            )
        await self.repository.replace_plan(
            project.id,
            [
                Milestone(
                    id=uuid.uuid4(),
                    project_id=project.id,
                    position=position,
                    title=item.title,
                    amount=item.amount,
                    due_date=item.due_date,
                    status=MilestoneStatus.draft,
                )
                for position, item in enumerate(items, start=1)
            ],
        )
        return await self._listing(project)

    # Wallet steps --------------------------------------------------------------------------

    async def prepare_funding(
        self, *, project_id: uuid.UUID, principal: Principal, token: str | None
    ) -> EscrowFunding:
        """The approve and deposit transactions of every draft milestone, for the client's
        wallet. The terms (token, payout address, termination time) are stored on the
        milestones: a deposit with other terms is not taken as their funding."""
        contract = self._contract()
        project = await self.projects.owned(project_id, principal)
        if project.status != ProjectStatus.in_progress:
            raise Conflict("Only a project in progress can be funded.")
        milestones = await self.repository.milestones(project.id, lock=True)
        drafts = [m for m in milestones if m.status == MilestoneStatus.draft]
        if not drafts:
            raise MilestoneState("There is no draft milestone to fund; plan milestones first.")
        payee = await self._verified_payout(project)
        _price, currency = await self._price(project)
        on_chain = [m for m in milestones if m.funded_block is not None]
        if on_chain:
            # The contract fixed the project's terms at its first deposit.
            first = on_chain[0]
            chosen = self._token(currency, first.token_symbol)
            if payee.lower() != (first.payout_address or "").lower():
                raise WalletUnverified(
                    "The expert's verified wallet differs from the one this project's escrow "
                    "pays out to."
                )
            termination = first.termination_time
        else:
            chosen = self._token(currency, token)
            termination = self._termination_time(milestones)
        assert termination is not None
        if termination <= dt.datetime.now(dt.UTC).timestamp():
            # A deposit whose termination time has passed can be withdrawn at once: it would
            # show as funded while guaranteeing the expert nothing.
            raise Conflict(
                "This project's escrow has reached its termination time; no more milestones "
                "can be funded under it."
            )
        transactions: list[dict[str, str]] = []
        total = 0
        for milestone in drafts:
            units = token_units(milestone.amount, chosen.decimals)
            milestone.token_symbol = chosen.symbol
            milestone.token_address = chosen.address
            milestone.amount_units = Decimal(units)
            milestone.payout_address = payee
            milestone.termination_time = termination
            total += units
            transactions.append(
                contract.deposit(
                    project_id=project.id,
                    milestone_id=milestone.id,
                    token=chosen.address,
                    payee=payee,
                    amount_units=units,
                    termination_time=termination,
                )
            )
        await self.session.flush()
        return EscrowFunding(
            chain_id=self.settings.chain_id,
            contract=contract.address,
            token=chosen.symbol,
            token_address=chosen.address,
            amount_units=str(total),
            termination_time=termination,
            transactions=[
                Transaction(**tx) for tx in [contract.approve(chosen.address, total), *transactions]
            ],
        )

    async def release(self, *, milestone_id: uuid.UUID, principal: Principal) -> Transactions:
        """The release transaction for the depositor's wallet: the owner, a funded milestone,
        and the expert's payout wallet still the verified one."""
        contract = self._contract()
        milestone, project = await self._milestone(milestone_id, principal)
        if project.client_id != principal.account_id:
            raise Forbidden("Only the client who funded the milestone can release it.")
        self._expect(milestone, MilestoneStatus.funded, "released")
        payee = await self._verified_payout(project)
        if payee.lower() != (milestone.payout_address or "").lower():
            raise WalletUnverified(
                "The milestone pays out to a wallet that is no longer the expert's verified one."
            )
        return Transactions(
            transactions=[Transaction(**contract.release(project.id, milestone.id))]
        )

    async def dispute(
        self, *, milestone_id: uuid.UUID, principal: Principal, reason: str
    ) -> Transactions:
        """The dispute transaction for the client's or the expert's wallet; the chain records
        the reason's hash, the platform its text. The milestone stays funded until the dispute
        is confirmed and both parties may ask meanwhile, so each party's reason is kept apart
        with its hash (the arbiter sees the one the chain confirmed)."""
        contract = self._contract()
        milestone, project = await self._milestone(milestone_id, principal, lock=True)
        if principal.account_id not in (project.client_id, project.expert_id):
            raise Forbidden("Only the client or the expert of the project can dispute.")
        self._expect(milestone, MilestoneStatus.funded, "disputed")
        await self.repository.keep_dispute_reason(
            milestone_id=milestone.id,
            account_id=principal.account_id,
            reason=reason,
            details_hash="0x" + details_hash(reason).hex(),
        )
        tx = contract.dispute(project.id, milestone.id, reason)
        return Transactions(transactions=[Transaction(**tx)])

    async def request_resolution(
        self,
        *,
        milestone_id: uuid.UUID,
        principal: Principal,
        body: ResolutionRequest,
        origin: RequestOrigin,
    ) -> Milestone:
        """Record the arbiter's award; the caller defers the job that sends it. An award whose
        job is no longer waiting or running (it gave up after its last attempt, or was
        cancelled) may be requested again: the milestone is still disputed on chain."""
        self._contract()
        if self.settings.arbiter_key_file is None:
            raise EscrowNotConfigured()
        milestone, _project = await self._milestone(milestone_id, principal, lock=True)
        self._expect(milestone, MilestoneStatus.disputed, "resolved")
        previous = milestone.resolution_share_bps
        if previous is not None and await self.repository.resolution_job_pending(milestone.id):
            raise MilestoneState("A resolution of this dispute is already on its way.")
        previous_tx = milestone.resolution_tx_hash
        milestone.resolution_share_bps = body.expert_share_bps
        milestone.resolution_note = body.note
        # A new request sends a new transaction even if the node still knows the last one
        # (stuck, or reverted): the contract resolves a dispute once, so of two resolves in
        # flight the later reverts, and the job stops once the watcher applied the first.
        milestone.resolution_tx_hash = None
        await AuditTrail(self.session).record(
            actor_id=principal.account_id,
            action="escrow.resolution_requested",
            resource_type="milestone",
            resource_id=milestone.id,
            origin=origin,
            details={
                "expert_share_bps": body.expert_share_bps,
                "previous_expert_share_bps": previous,
                "previous_tx_hash": previous_tx,
            },
        )
        return milestone

    async def milestone_for(self, *, milestone_id: uuid.UUID, principal: Principal) -> Milestone:
        """A milestone its project's client, expert or an admin may see (404 otherwise)."""
        milestone, _project = await self._milestone(milestone_id, principal)
        return milestone

    async def confirmed_dispute_reason(self, milestone: Milestone) -> str | None:
        """The reason whose hash the confirmed Disputed event carries; None before the dispute
        is confirmed, or when no kept reason matches (sent from elsewhere, or erased)."""
        if milestone.dispute_hash is None:
            return None
        return await self.repository.dispute_reason(milestone.id, milestone.dispute_hash)

    async def state(self, *, project_id: uuid.UUID, principal: Principal) -> EscrowState:
        contract = self._contract()
        project = await self._participant(project_id, principal)
        milestones = await self.repository.milestones(project.id)
        return EscrowState(
            chain_id=self.settings.chain_id,
            contract=contract.address,
            confirmations=self.settings.confirmations,
            confirmed_block=await self.repository.confirmed_block(follower_name(self.settings)),
            milestones=[MilestoneChainState.model_validate(m) for m in milestones],
        )

    # Helpers -------------------------------------------------------------------------------

    def _contract(self) -> EscrowContract:
        if not self.settings.configured:
            raise EscrowNotConfigured()
        return EscrowContract(self.settings)

    async def _verified_payout(self, project: Project) -> str:
        """The one place the escrow asks whether the expert's payout wallet is verified."""
        address = (
            await payout_wallet_verified(self.session, project.expert_id)
            if project.expert_id is not None
            else None
        )
        if address is None:
            raise WalletUnverified(
                "The expert has no verified EVM payout wallet; escrow pays only to one."
            )
        return address

    def _termination_time(self, milestones: Sequence[Milestone]) -> int:
        """When the client may withdraw: midnight UTC, ESCROW_TERMINATION_DAYS after the last
        due date. A plan saved before its dates passed (or before they were checked) must be
        re-planned first: a past time lets the client withdraw at once."""
        last_due = max(m.due_date for m in milestones)
        problem = due_date_problem(last_due)
        if problem is not None:
            raise InvalidInput(
                f"The plan's last due date, {last_due.isoformat()}: {problem}; re-plan the "
                "milestones before funding them.",
                errors=[field_error("due_date", problem)],
            )
        end = last_due + dt.timedelta(days=self.settings.termination_days)
        return int(dt.datetime.combine(end, dt.time(), dt.UTC).timestamp())

    def _token(self, currency: str, symbol: str | None) -> EscrowToken:
        fits = [
            t
            for t in self.settings.tokens
            if t.symbol == currency or (currency == "USD" and t.symbol in _DOLLAR_TOKENS)
        ]
        chosen = [t for t in fits if symbol is None or t.symbol == symbol.upper()]
        if not chosen:
            raise InvalidInput(
                f"No configured stablecoin pays a project priced in {currency}"
                + (f" as {symbol}." if symbol else "."),
                errors=[field_error("token", "not a configured token for this currency")],
            )
        return chosen[0]

    async def _participant(self, project_id: uuid.UUID, principal: Principal) -> Project:
        project = await self.projects.visible(project_id, principal)
        if principal.is_admin or principal.account_id in (project.client_id, project.expert_id):
            return project
        raise Forbidden("Only the project's client, its expert and admins see its milestones.")

    async def _milestone(
        self, milestone_id: uuid.UUID, principal: Principal, *, lock: bool = False
    ) -> tuple[Milestone, Project]:
        milestone = await self.repository.milestone(milestone_id, lock=lock)
        if milestone is None:
            raise NotFound("No such milestone.")
        try:
            project = await self._participant(milestone.project_id, principal)
        except NotFound:
            raise NotFound("No such milestone.") from None
        return milestone, project

    @staticmethod
    def _expect(milestone: Milestone, status: MilestoneStatus, verb: str) -> None:
        if milestone.status != status:
            raise MilestoneState(
                f"A {milestone.status} milestone cannot be {verb}; it must be {status}.",
                milestone_status=milestone.status,
            )

    async def _price(self, project: Project) -> tuple[Decimal, str]:
        price = await self.repository.accepted_price(project.id)
        if price is None:
            raise Conflict("The project has no accepted proposal.")
        return price

    async def _listing(self, project: Project) -> MilestoneList:
        milestones = await self.repository.milestones(project.id)
        price = await self.repository.accepted_price(project.id)
        return MilestoneList(
            data=[MilestoneResponse.model_validate(m) for m in milestones],
            currency=price[1] if price else project.budget_currency,
            total=sum((m.amount for m in milestones), Decimal(0)),
        )
