"""The versioning group of the settings: API v1's deprecation and sunset dates."""

from __future__ import annotations

import datetime as dt

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings

from chainconsult.infra.settings import SETTINGS_CONFIG


class VersioningSettings(BaseSettings):
    model_config = SETTINGS_CONFIG

    api_v1_sunset: str = Field("Thu, 01 Jul 2027 00:00:00 GMT", validation_alias="API_V1_SUNSET")
    """HTTP-date after which API v1 may stop answering."""
    api_v1_deprecation: str = Field(
        "Thu, 01 Jan 2026 00:00:00 GMT", validation_alias="API_V1_DEPRECATION"
    )
    """HTTP-date from which API v1 is deprecated (sent as RFC 9745 `Deprecation: @<seconds>`);
    not after API_V1_SUNSET."""

    @field_validator("api_v1_sunset", "api_v1_deprecation")
    @classmethod
    def _http_date(cls, value: str) -> str:
        from email.utils import parsedate_to_datetime

        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an HTTP-date") from exc
        if parsed is None or parsed.tzinfo is None:
            raise ValueError(f"{value!r} is not an HTTP-date in GMT")
        return value

    @model_validator(mode="after")
    def _sunset_after_deprecation(self) -> VersioningSettings:
        from email.utils import parsedate_to_datetime

        # RFC 8594: a Sunset before the Deprecation would tell clients v1 died before it was
        # deprecated.
        if parsedate_to_datetime(self.api_v1_sunset) < parsedate_to_datetime(
            self.api_v1_deprecation
        ):
            raise ValueError("API_V1_SUNSET must not be earlier than API_V1_DEPRECATION")
        return self

    def sunset_at(self) -> dt.datetime:
        from email.utils import parsedate_to_datetime

        return parsedate_to_datetime(self.api_v1_sunset)

    def deprecated_at(self) -> dt.datetime:
        from email.utils import parsedate_to_datetime

        return parsedate_to_datetime(self.api_v1_deprecation)
