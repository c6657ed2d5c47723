from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.models.accounts import Account
from chainconsult.models.experts import ApplicationStatus, ExpertApplication, ExpertProfile

PENDING = (ApplicationStatus.submitted, ApplicationStatus.under_review)


class ApplicationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_account(self, account_id: uuid.UUID) -> Account | None:
        """Serialises an account's concurrent submissions (and its quota checks)."""
        query = select(Account).where(Account.id == account_id).with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def pending_for(self, account_id: uuid.UUID) -> ExpertApplication | None:
        query = select(ExpertApplication).where(
            ExpertApplication.account_id == account_id, ExpertApplication.status.in_(PENDING)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def latest_revision(self, account_id: uuid.UUID) -> int:
        query = select(func.coalesce(func.max(ExpertApplication.revision), 0)).where(
            ExpertApplication.account_id == account_id
        )
        return int((await self.session.execute(query)).scalar_one())

    async def add(self, application: ExpertApplication) -> ExpertApplication:
        self.session.add(application)
        await self.session.flush()
        return application

    async def of_account(self, account_id: uuid.UUID) -> list[ExpertApplication]:
        query = (
            select(ExpertApplication)
            .where(ExpertApplication.account_id == account_id)
            .order_by(ExpertApplication.revision.desc())
        )
        return list((await self.session.execute(query)).scalars())

    async def lock(self, application_id: uuid.UUID) -> ExpertApplication | None:
        query = (
            select(ExpertApplication)
            .where(ExpertApplication.id == application_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def queue(
        self,
        *,
        status: ApplicationStatus | None,
        after: tuple[dt.datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[ExpertApplication]:
        """Oldest first: the vetting queue is worked from its front."""
        query = select(ExpertApplication)
        if status is not None:
            query = query.where(ExpertApplication.status == status)
        if after is not None:
            query = query.where(tuple_(ExpertApplication.created_at, ExpertApplication.id) > after)
        query = query.order_by(ExpertApplication.created_at, ExpertApplication.id).limit(limit)
        return list((await self.session.execute(query)).scalars())

    async def upsert_profile(self, values: dict[str, Any]) -> None:
        """Create the expert's public profile, or refresh it from a newer approved revision
        (ratings are kept)."""
        statement = insert(ExpertProfile).values(**values)
        refreshed = {key: statement.excluded[key] for key in values if key != "id"}
        await self.session.execute(
            statement.on_conflict_do_update(index_elements=[ExpertProfile.id], set_=refreshed)
        )
