"""Jinja2 templates for every email: ``<kind>.txt`` (with a ``subject`` block) and
``<kind>.html``, both on a shared layout. Variables missing from the context are errors,
never silently empty text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from chainconsult.infra.text import one_line


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


class EmailTemplates:
    def __init__(self) -> None:
        self.env = Environment(
            loader=PackageLoader("chainconsult.mail", "templates"),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )

    def kinds(self) -> set[str]:
        return {
            name.rsplit(".", 1)[0]
            for name in self.env.list_templates(extensions=["txt"])
            if not name.startswith("_")
        }

    def render(self, kind: str, context: dict[str, Any]) -> RenderedEmail:
        text_template = self.env.get_template(f"{kind}.txt")
        subject = "".join(text_template.blocks["subject"](text_template.new_context(context)))
        subject = one_line(subject)
        full = {**context, "subject": subject}
        return RenderedEmail(
            subject=subject,
            text=text_template.render(full),
            html=self.env.get_template(f"{kind}.html").render(full),
        )


templates = EmailTemplates()
