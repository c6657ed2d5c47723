"""The v1 form of project requests: `budget` is one number of US dollars (v2: a range), v1
lists only the open public projects by numbered page, and v1 never had invitations or
visibility (its projects are all public)."""

from __future__ import annotations

from chainconsult.experts.vocabulary import AMOUNT_MAXIMUM, AMOUNT_STEP
from chainconsult.infra.versioning import (
    FixedParameter,
    ListShape,
    NewInV2,
    ObjectShape,
    PageNumbers,
    RangeAsNumber,
    V1Route,
)

PROJECT_V1 = ObjectShape(
    (
        RangeAsNumber(v1="budget", v2="budget", maximum=AMOUNT_MAXIMUM, step=AMOUNT_STEP),
        NewInV2("visibility", v1_value="public", has_v1_value=True),
        NewInV2("invited_experts"),
    )
)

V1_ROUTES = (
    V1Route(
        "GET",
        "/projects",
        query=(FixedParameter("view", "open", "open public projects"), PageNumbers()),
        response=ListShape(PROJECT_V1),
    ),
    V1Route("POST", "/projects", request=PROJECT_V1, response=PROJECT_V1),
)
