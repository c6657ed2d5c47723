"""The v1 form of the accounts API: login only, with the same request and response as v2."""

from __future__ import annotations

from chainconsult.infra.versioning import V1Route

V1_ROUTES = (V1Route("POST", "/auth/login"),)
