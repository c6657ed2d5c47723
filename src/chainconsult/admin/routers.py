"""Every route under /admin, API and pages, listed in one place: admin's own (plans, unlock,
the audit log, the job overview), ending a user's sessions (accounts), the vetting queue
(applications), the alert desk (operations) and the arbiter's escrow resolutions (escrow).
The handlers stay next to the service whose rules they call; app.py includes these routers
flat, like every other (docs/decisions/0008-flat-routers-and-auth-dependencies.md)."""

from __future__ import annotations

from fastapi import APIRouter

from chainconsult.accounts.lifecycle_endpoints import admin_router as sessions_api
from chainconsult.admin.endpoints import router as admin_api
from chainconsult.admin.pages import router as admin_pages
from chainconsult.applications.endpoints import admin_router as vetting_api
from chainconsult.applications.pages import admin_router as vetting_pages
from chainconsult.escrow.endpoints import admin_router as arbiter_api
from chainconsult.operations.endpoints import admin_router as alerts_api

ADMIN_API_ROUTERS: tuple[APIRouter, ...] = (
    admin_api,
    sessions_api,
    vetting_api,
    alerts_api,
    arbiter_api,
)
"""Under /api/v2/admin."""
ADMIN_PAGE_ROUTERS: tuple[APIRouter, ...] = (vetting_pages, admin_pages)
"""The operator's pages, under /admin."""
