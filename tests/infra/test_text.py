"""Text fields: every text field of every request body is declared single-line or multi-line,
control and invisible formatting characters are refused with a 422 naming the field, line
breaks of a multi-line field are stored as \\n, and ``one_line`` makes any text a header."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, get_args, get_origin

import pytest
from httpx import AsyncClient
from pydantic import BaseModel, TypeAdapter, ValidationError

from chainconsult.app import create_app
from chainconsult.config import Settings
from chainconsult.infra.text import MultiLine, SingleLine, one_line
from tests.market import admin, application_body, approved_expert, project_body, proposal_body
from tests.test_routes import _api_routes

TITLE = TypeAdapter(Annotated[str, SingleLine(min_length=3, max_length=40)])
BIO = TypeAdapter(Annotated[str, MultiLine(min_length=3, max_length=20)])

# Secrets and the login address are compared, never shown or sent anywhere.
NOT_SHOWN = {"LoginRequest.email", "LoginRequest.password", "RegisterRequest.password"}
NOT_SHOWN |= {"ErasureRequest.password"}
# Addresses that are shown and sent to are read by accounts.schemas.normalize_email, whose
# email_validator refuses every control and formatting character.
NOT_SHOWN |= {"RegisterRequest.email", "ResetRequest.email"}
# Passwords, one-time codes and mailed or signed tokens: checked, never shown or stored as text;
# a SIWE message is read by its own strict parser (accounts/siwe.py).
NOT_SHOWN |= {
    "MfaLoginRequest.code",
    "MfaLoginRequest.mfa_token",
    "MfaLoginRequest.recovery_code",
    "PasswordChangeRequest.current_password",
    "PasswordChangeRequest.new_password",
    "ResetConfirmRequest.new_password",
    "ResetConfirmRequest.token",
    "SiweRequest.message",
    "SiweRequest.signature",
    "TotpConfirmRequest.code",
    "TotpDisableRequest.code",
    "TotpDisableRequest.password",
    "VerifyEmailRequest.token",
}


def _text_fields(annotation: Any, metadata: list[Any], where: str) -> Iterator[tuple[str, bool]]:
    """(field, declared single- or multi-line) for every ``str`` inside ``annotation``."""
    if get_origin(annotation) is Annotated:
        inner, *extra = get_args(annotation)
        yield from _text_fields(inner, [*metadata, *extra], where)
    elif annotation is str:
        yield where, any(isinstance(item, SingleLine | MultiLine) for item in metadata)
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, field in annotation.model_fields.items():
            yield from _text_fields(
                field.annotation, list(field.metadata), f"{annotation.__name__}.{name}"
            )
    else:
        for argument in get_args(annotation):
            yield from _text_fields(argument, [], where)


def test_every_text_field_of_every_request_body_is_declared_single_or_multi_line(
    settings: Settings,
) -> None:
    fields: dict[str, bool] = {}
    for route in _api_routes(create_app(settings).router.routes):
        for body in route.dependant.body_params:
            fields.update(_text_fields(body.field_info.annotation, [], route.path))
    assert fields.keys() >= {
        "RegisterRequest.display_name",
        "ProjectRequest.title",
        "ProposalRequest.cover_letter",
        "DecisionRequest.note",
    }
    undeclared = sorted(name for name, declared in fields.items() if not declared)
    assert [name for name in undeclared if name not in NOT_SHOWN] == [], "\n".join(undeclared)


@pytest.mark.parametrize(
    "value",
    [
        "Bob\r\nBcc: x",
        "line\nbreak",
        "tab\there",
        "nul\x00l",
        "esc\x1b[31m",
        "bidi\u202eevil",
        "zero\u200bwidth",
        "bom\ufeffhere",
        "sep\u2028line",
        "del\x7fete",
        "c1\x85next",
    ],
)
def test_a_single_line_refuses_controls_and_invisible_formatting(value: str) -> None:
    with pytest.raises(ValidationError) as refused:
        TITLE.validate_python(value)
    [error] = refused.value.errors()
    assert error["type"] == "text_character"
    assert "is not allowed" in error["msg"]


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("  Ada  ", "Ada"),
        ("Cafe\u0301", "Caf\u00e9"),  # NFC: the same text, however it was typed
        ("\u0645\u06cc\u200c\u062e\u0648", "\u0645\u06cc\u200c\u062e\u0648"),  # Persian ZWNJ
        ("\U0001f469\u200d\U0001f4bb", "\U0001f469\u200d\U0001f4bb"),  # emoji joined by ZWJ
        ("a\u00a0b", "a\u00a0b"),
        ("Title\n", "Title"),  # a trailing line break is only an end to strip
    ],
)
def test_a_single_line_keeps_real_writing(given: str, stored: str) -> None:
    assert TITLE.validate_python(given) == stored


def test_lengths_count_the_stored_text() -> None:
    assert TITLE.validate_python("   abc   ") == "abc"
    with pytest.raises(ValidationError, match="at least 3 characters"):
        TITLE.validate_python("  ab  ")


def test_multi_line_text_stores_every_kind_of_line_break_as_a_newline() -> None:
    assert BIO.validate_python("a\r\nb\rc\u2028d\x85e\tf") == "a\nb\nc\nd\ne\tf"
    for value in ["esc\x1b", "nul\x00", "bell\x07", "bidi\u202e", "form\x0cfeed"]:
        with pytest.raises(ValidationError, match="is not allowed"):
            BIO.validate_python(value)


@pytest.mark.parametrize(
    ("value", "header"),
    [
        ("Bob\r\nBcc: eve@example.com", "Bob Bcc: eve@example.com"),
        ("a\u2028b\x85c\x0bd\x0ce\x1cf", "a b c d e f"),
        ("nul\x00 esc\x1b bidi\u202e zw\u200b", "nul esc bidi zw"),
        ("  spaced\t\tout  ", "spaced out"),
        ("Zoë \U0001f469\u200d\U0001f4bb", "Zoë \U0001f469\u200d\U0001f4bb"),
    ],
)
def test_one_line_makes_any_text_a_single_header_line(value: str, header: str) -> None:
    assert one_line(value) == header
    assert len(header.splitlines()) == 1


async def test_control_characters_in_any_text_field_are_a_422_naming_the_field(
    client: AsyncClient, database_url: str
) -> None:
    admin_headers = await admin(client, database_url)
    _, expert = await approved_expert(client, admin_headers)
    owner = await client.post(
        "/api/v2/auth/register",
        json={
            "email": "owner@example.com",
            "password": "correct horse battery staple",
            "display_name": "Owner",
        },
    )
    assert owner.status_code == 201
    token = await client.post(
        "/api/v2/auth/login",
        json={"email": "owner@example.com", "password": "correct horse battery staple"},
    )
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    project = await client.post("/api/v2/projects", json=project_body(), headers=headers)
    assert project.status_code == 201
    project_id = project.json()["id"]
    attempts: list[tuple[str, str, dict[str, Any], dict[str, str], str]] = [
        (
            "POST",
            "/api/v2/auth/register",
            {
                "email": "mallory@example.com",
                "password": "correct horse battery staple",
                "display_name": "Mallory\r\nBcc: everyone@example.com",
            },
            {},
            "#/display_name",
        ),
        ("POST", "/api/v2/projects", project_body(title="Audit\nthis"), headers, "#/title"),
        (
            "POST",
            "/api/v2/projects",
            project_body(description="Four contracts\x00 and a NUL byte in here."),
            headers,
            "#/description",
        ),
        (
            "PATCH",
            f"/api/v2/projects/{project_id}",
            {"title": "Re\u202etitled"},
            headers,
            "#/title",
        ),
        (
            "POST",
            "/api/v2/expert-applications",
            application_body(headline="Auditor\u2028and more"),
            headers,
            "#/headline",
        ),
        (
            "POST",
            f"/api/v2/projects/{project_id}/proposals",
            proposal_body(cover_letter="I have audited \x1b[31mthree\x1b[0m lending protocols."),
            expert,
            "#/cover_letter",
        ),
    ]

    for method, path, body, caller, pointer in attempts:
        response = await client.request(method, path, json=body, headers=caller)

        assert response.status_code == 422, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        [error] = response.json()["errors"]
        assert error["pointer"] == pointer
        assert error["type"] == "text_character"
    # Nothing was stored by any of them.
    listed = await client.get("/api/v2/projects", params={"view": "mine"}, headers=headers)
    assert [item["title"] for item in listed.json()["data"]] == [project_body()["title"]]


async def test_a_multi_line_field_keeps_its_lines_as_newlines(
    client: AsyncClient, database_url: str
) -> None:
    admin_headers = await admin(client, database_url)
    _, headers = await approved_expert(client, admin_headers)
    description = "Four contracts:\r\n\t- a vault\r\n\t- a router\rand about 1,200 lines."

    created = await client.post(
        "/api/v2/projects",
        json=project_body(title="  Audit our lending protocol  ", description=description),
        headers=headers,
    )

    assert created.status_code == 201, created.text
    body = created.json()
    assert body["title"] == "Audit our lending protocol"
    assert (
        body["description"] == "Four contracts:\n\t- a vault\n\t- a router\nand about 1,200 lines."
    )
