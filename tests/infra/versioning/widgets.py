"""A small v2 API with every kind of declared v1 change, served through the real versioning
middleware, problem handlers and body guard: the layer's behaviour tested apart from any one
domain. Widgets live in the app's memory; they are this test app's own data, not a stand-in
for a production part."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, FastAPI, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from chainconsult.config import VersioningSettings
from chainconsult.errors import NotFound, install_problem_handlers
from chainconsult.infra.http import JSONResponse
from chainconsult.infra.monitoring.request_context import RequestContextMiddleware
from chainconsult.infra.security.body import BodyGuardMiddleware
from chainconsult.infra.versioning import (
    ApiVersionMiddleware,
    FixedParameter,
    ListShape,
    NewInV2,
    ObjectShape,
    PageNumbers,
    RangeAsNumber,
    RenamedField,
    V1Lifecycle,
    V1Route,
    V1Surface,
    WholeMoney,
    install_version_docs,
    render_guide,
)

MAX_BODY = 4096


class Money(BaseModel):
    amount: Decimal = Field(ge=0, decimal_places=2)
    currency: str = Field(pattern="^[A-Z]{3}$")


class Budget(BaseModel):
    min: Decimal = Field(ge=0)
    max: Decimal = Field(ge=0)
    currency: str = Field(pattern="^[A-Z]{3}$")


class WidgetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: str = Field(min_length=1, max_length=50)
    rate: Money
    budget: Budget
    visibility: Literal["public", "invite_only"]


class Widget(WidgetIn):
    id: uuid.UUID


class WidgetPage(BaseModel):
    data: list[Widget]
    next_cursor: str | None
    total: int


WIDGET_V1 = ObjectShape(
    (
        RenamedField(v1="name", v2="display_name"),
        WholeMoney(v1="hourly_rate", v2="rate"),
        RangeAsNumber(v1="budget", v2="budget"),
        NewInV2("visibility", v1_value="public", has_v1_value=True),
    )
)
SURFACE = V1Surface.of(
    [
        V1Route(
            "GET",
            "/widgets",
            query=(FixedParameter("order", "oldest", "oldest first"), PageNumbers()),
            response=ListShape(WIDGET_V1),
        ),
        V1Route("GET", "/widgets/{widget_id}", response=WIDGET_V1),
        V1Route("POST", "/widgets", request=WIDGET_V1, response=WIDGET_V1),
    ],
    {"/openapi.json": "/api/v2/openapi.json", "/docs": "/api/v2/docs", "/migration-guide": None},
)

router = APIRouter(prefix="/api/v2/widgets", tags=["widgets"])


def _store(request: Request) -> dict[uuid.UUID, Widget]:
    widgets: dict[uuid.UUID, Widget] = request.app.state.widgets
    return widgets


@router.post("", status_code=status.HTTP_201_CREATED, response_model=Widget)
async def create_widget(body: WidgetIn, request: Request) -> Widget:
    """Create a widget."""
    widget = Widget(id=uuid.uuid4(), **body.model_dump())
    _store(request)[widget.id] = widget
    return widget


@router.get("", response_model=WidgetPage)
async def list_widgets(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
    order: Literal["oldest", "newest"] = "oldest",
    offset: Annotated[int, Query(ge=0, include_in_schema=False)] = 0,
) -> WidgetPage:
    """Widgets in creation order (or newest first), a page at a time."""
    widgets = list(_store(request).values())
    if order == "newest":
        widgets.reverse()
    start = int(cursor) if cursor else offset
    page = widgets[start : start + limit]
    more = start + limit < len(widgets)
    return WidgetPage(
        data=page, next_cursor=str(start + limit) if more else None, total=len(widgets)
    )


@router.get("/{widget_id}", response_model=Widget)
async def get_widget(widget_id: uuid.UUID, request: Request) -> Widget:
    """One widget."""
    widget = _store(request).get(widget_id)
    if widget is None:
        raise NotFound("No such widget.")
    return widget


def widgets_app(*, max_client_labels: int = 50) -> FastAPI:
    app = FastAPI(
        title="widgets",
        default_response_class=JSONResponse,
        openapi_url="/api/v2/openapi.json",
        docs_url="/api/v2/docs",
        redoc_url=None,
    )
    app.state.widgets = {}
    install_problem_handlers(app)
    app.include_router(router)
    lifecycle = V1Lifecycle.from_settings(VersioningSettings())
    install_version_docs(app, SURFACE, lifecycle, lambda: render_guide(SURFACE))
    app.add_middleware(BodyGuardMiddleware, max_body_bytes=MAX_BODY)
    app.add_middleware(
        ApiVersionMiddleware,
        surface=SURFACE,
        lifecycle=lifecycle,
        max_body_bytes=MAX_BODY,
        max_client_labels=max_client_labels,
    )
    app.add_middleware(RequestContextMiddleware)
    return app
