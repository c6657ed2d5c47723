"""HTML forms on top of the API's request schemas: a posted form becomes the same document a
JSON client would send (``FormState.document``), validated by the same pydantic model; what
fails is shown next to its field, with what the user typed kept in the form."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData

from chainconsult.infra.http_errors import InvalidInput, field_error

Values = dict[str, str | list[str]]


def _field_name(location: Sequence[Any]) -> str:
    # A list item's error belongs to the list's field: ("skills", 2) -> "skills".
    return ".".join(str(part) for part in location if not isinstance(part, int))


def _message(text: str) -> str:
    return text.removeprefix("Value error, ")


@dataclass
class FormState:
    """A form as a template shows it: the values to fill in, errors by field name (dotted, as
    the inputs are named: ``budget.min``), and errors that belong to no one field."""

    values: Values = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    @classmethod
    def posted(cls, form: FormData, *, lists: Iterable[str] = ()) -> FormState:
        several = set(lists)
        values: Values = {}
        for name in form:
            if name == "csrf_token":
                continue
            if name in several:
                values[name] = [v for v in form.getlist(name) if isinstance(v, str)]
            else:
                value = form.get(name)
                values[name] = value if isinstance(value, str) else ""
        return cls(values=values)

    def value(self, name: str) -> str:
        found = self.values.get(name, "")
        return found if isinstance(found, str) else ""

    def chosen(self, name: str) -> list[str]:
        found = self.values.get(name, [])
        return found if isinstance(found, list) else [found]

    def document(
        self,
        names: Iterable[str],
        *,
        lines: Iterable[str] = (),
        integers: Iterable[str] = (),
        optional: Iterable[str] = (),
    ) -> dict[str, Any]:
        """The JSON document these values stand for: dotted names nest (``budget.min``),
        ``lines`` fields hold one item per line, ``integers`` become numbers when they are
        ones (else stay text for the schema to refuse), an empty ``optional`` field is left
        out, and list fields (checkboxes) stay lists."""
        by_line, numbers, omissible = set(lines), set(integers), set(optional)
        document: dict[str, Any] = {}
        for name in names:
            raw = self.values.get(name, [] if name in by_line else "")
            value: Any = raw
            if name in by_line:
                text = raw if isinstance(raw, str) else "\n".join(raw)
                value = [line.strip() for line in text.splitlines() if line.strip()]
            elif isinstance(raw, str):
                value = raw.strip()
                if name in numbers:
                    with contextlib.suppress(ValueError):
                        value = int(value)
            if name in omissible and value in ("", []):
                continue
            target = document
            *parents, last = name.split(".")
            for parent in parents:
                target = target.setdefault(parent, {})
            target[last] = value
        return document

    def refuse(self, error: ValidationError) -> FormState:
        """The schema's errors, each under the field it names."""
        for item in error.errors():
            name = _field_name(item.get("loc", ()))
            self._add(name, _message(str(item.get("msg", "invalid"))))
        return self

    def refuse_problem(self, detail: str, errors: Iterable[Mapping[str, Any]] = ()) -> FormState:
        """A service's refusal: its field errors (JSON pointers) under their fields, and its
        detail as the form's message."""
        for item in errors:
            pointer = str(item.get("pointer", "")).removeprefix("#/")
            self._add(pointer.replace("/", "."), str(item.get("detail", "")))
        self.general.append(detail)
        return self

    def _add(self, name: str, message: str) -> None:
        if name and name in self.errors:
            self.errors[name] += f"; {message}"
        elif name:
            self.errors[name] = message
        else:
            self.general.append(message)

    @property
    def failed(self) -> bool:
        return bool(self.errors or self.general)


def invalid_input(error: ValidationError) -> InvalidInput:
    """A form without fields to show errors beside (a button's hidden values): the problem
    the API would answer, which the page handler shows as a page."""
    return InvalidInput(
        f"{error.error_count()} field(s) failed validation.",
        errors=[
            field_error(_field_name(item.get("loc", ())), _message(str(item.get("msg", ""))))
            for item in error.errors()
        ],
    )
