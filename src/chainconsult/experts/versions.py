"""The v1 form of the expert directory: numbered pages and a bare array, `name` for
`display_name`, the hourly rate as a whole number of US dollars, and no search `highlight`."""

from __future__ import annotations

from chainconsult.infra.versioning import (
    ListShape,
    NewInV2,
    ObjectShape,
    PageNumbers,
    RenamedField,
    V1Route,
    WholeMoney,
)

EXPERT_V1 = ObjectShape(
    (
        RenamedField(v1="name", v2="display_name"),
        WholeMoney(v1="hourly_rate", v2="hourly_rate"),
    )
)
DIRECTORY_ITEM_V1 = ObjectShape((*EXPERT_V1.changes, NewInV2("highlight")))

V1_ROUTES = (
    V1Route("GET", "/experts", query=(PageNumbers(),), response=ListShape(DIRECTORY_ITEM_V1)),
    V1Route("GET", "/experts/{expert_id}", response=EXPERT_V1),
)
