"""API versions: v2 is the one implementation; v1 is derived from it by declared changes.

Domains declare their v1 routes with the classes below (in their own ``versions.py``); the
composition root (``chainconsult.api_versions``) gathers them into a ``V1Surface`` that drives
the middleware, the per-version OpenAPI documents and the migration guide."""

from chainconsult.infra.versioning.changes import (
    FieldChange,
    FixedParameter,
    NewInV2,
    PageNumbers,
    QueryChange,
    RangeAsNumber,
    RenamedField,
    UpConversionError,
    WholeMoney,
)
from chainconsult.infra.versioning.guide import render_guide
from chainconsult.infra.versioning.lifecycle import V1Lifecycle
from chainconsult.infra.versioning.middleware import ApiVersionMiddleware
from chainconsult.infra.versioning.openapi import (
    DOCS_PASSTHROUGH,
    build_documents,
    install_version_docs,
)
from chainconsult.infra.versioning.surface import ListShape, ObjectShape, V1Route, V1Surface

__all__ = [
    "DOCS_PASSTHROUGH",
    "ApiVersionMiddleware",
    "FieldChange",
    "FixedParameter",
    "ListShape",
    "NewInV2",
    "ObjectShape",
    "PageNumbers",
    "QueryChange",
    "RangeAsNumber",
    "RenamedField",
    "UpConversionError",
    "V1Lifecycle",
    "V1Route",
    "V1Surface",
    "WholeMoney",
    "build_documents",
    "install_version_docs",
    "render_guide",
]
