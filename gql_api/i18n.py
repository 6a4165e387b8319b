"""Messages in Korean and English: gettext catalogs (gql_api/locale, managed with Babel: `make
messages`), the request's language from Accept-Language, and `Message`, the one type a
user-facing text has until it is shown.

Services build messages with `_("{label} is required.", label=...)` wherever they find a
problem; nothing is translated there. A message is rendered once it reaches the client (a
`userErrors` entry, a top-level error, an HTTP error answer), in the language of the request
being answered (`current_locale`, set by `LocaleMiddleware` for every HTTP request). Keeping
the text lazy until then is what lets module-level constants, services run outside a request
(the CLI), and logs (always English) share the same messages.

The English text is the msgid: the English catalog is the source itself, and a message missing
from the Korean catalog shows in English rather than not at all (a test keeps the Korean catalog
complete). Placeholders are named (`{label}`), so a translation may order them as Korean needs.
"""

from __future__ import annotations

import gettext
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal, get_args

from babel.core import negotiate_locale
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as AsgiMessage

from gql_api.http_conventions import weighted_ranges

Locale = Literal["ko", "en"]
LOCALES: tuple[Locale, ...] = get_args(Locale)
SOURCE_LOCALE: Locale = "en"  # the language msgids are written in
LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"

# The language of the request being answered; English outside any request (CLI, logs).
current_locale: ContextVar[Locale] = ContextVar("current_locale", default=SOURCE_LOCALE)


@dataclass(frozen=True, slots=True)
class Localized:
    """A text the data carries in both languages (a catalog label), chosen by locale rather
    than looked up in a gettext catalog; `en` absent: the Korean text in both."""

    ko: str
    en: str | None = None

    def render(self, locale: Locale | None = None) -> str:
        chosen = locale or current_locale.get()
        return self.en if chosen == "en" and self.en else self.ko

    def __str__(self) -> str:
        return self.render()


@dataclass(frozen=True, slots=True)
class Message:
    """A user-facing text, translated when rendered. `msgid` is the English text with named
    `{placeholders}`; `params` fill them (a Message or Localized parameter is rendered in the
    same language). `plural` and `count` choose between singular and plural forms."""

    msgid: str
    params: Mapping[str, object] = field(default_factory=dict)
    plural: str | None = None
    count: int | None = None

    def render(self, locale: Locale | None = None) -> str:
        chosen = locale or current_locale.get()
        catalog = translations(chosen)
        if self.plural is not None and self.count is not None:
            text = catalog.ngettext(self.msgid, self.plural, self.count)
        else:
            text = catalog.gettext(self.msgid)
        if not self.params:
            return text
        values = {name: _render_value(value, chosen) for name, value in self.params.items()}
        return text.format(**values)

    def __str__(self) -> str:
        return self.render()


def _render_value(value: object, locale: Locale) -> object:
    if isinstance(value, (Message, Localized)):
        return value.render(locale)
    return value


def _(msgid: str, /, **params: object) -> Message:
    """Mark `msgid` (English, a literal: Babel extracts it) as a user-facing message."""
    return Message(msgid, params)


def _n(singular: str, plural: str, count: int, /, **params: object) -> Message:
    """A message with a plural form; `count` is also available as `{count}`."""
    return Message(singular, {"count": count, **params}, plural=plural, count=count)


@cache
def translations(locale: Locale) -> gettext.NullTranslations:
    """The compiled catalog of `locale` (English: the msgids themselves)."""
    if locale == SOURCE_LOCALE:
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, localedir=LOCALE_DIR, languages=[locale])


def negotiate(accept_language: str | None, *, default: Locale) -> Locale:
    """The best of LOCALES for an Accept-Language header (RFC 9110 12.5.4: ranges by
    descending weight, a region falling back to its language, `q=0` meaning "not
    acceptable"); `default` when it names none of them, or is absent or malformed, unless the
    header refuses the default (`ko;q=0`): then the other language."""
    if not accept_language:
        return default
    ranked: list[tuple[float, int, str]] = []
    refused: set[str] = set()
    for position, (tag, weight) in enumerate(weighted_ranges(accept_language)):
        if tag == "*":
            continue
        if weight > 0:
            ranked.append((-weight, position, tag))
        else:
            refused.add(tag.split("-", 1)[0])
    preferred = [tag for _weight, _position, tag in sorted(ranked)]
    chosen = negotiate_locale(preferred, list(LOCALES), sep="-")
    for locale in (default, *LOCALES):  # the Literal itself, for the type checker
        if chosen == locale or (chosen is None and locale not in refused):
            return locale
    return default


# Answers that carry a message in some language (the API's JSON), and so say which.
_WORDED_MEDIA = (b"application/json", b"application/graphql-response+json")


class LocaleMiddleware:
    """Sets `current_locale` for the request from its Accept-Language (DEFAULT_LOCALE when it
    names neither language) and says which language the answer is in (Content-Language, and
    Vary: Accept-Language for caches)."""

    def __init__(self, app: ASGIApp, *, default: Locale) -> None:
        self.app = app
        self.default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        locale = negotiate(Headers(scope=scope).get("accept-language"), default=self.default)
        token = current_locale.set(locale)

        async def send_with_language(message: AsgiMessage) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": _with_language(message["headers"], locale)}
            await send(message)

        try:
            await self.app(scope, receive, send_with_language)
        finally:
            current_locale.reset(token)


def _with_language(headers: list[tuple[bytes, bytes]], locale: Locale) -> list[tuple[bytes, bytes]]:
    """Content-Language on a JSON answer (not on static files, plain-text errors or GraphiQL,
    which have no language of ours), and Accept-Language added to the one Vary line (caches
    and CDNs may read only the first)."""
    media = next((value for name, value in headers if name.lower() == b"content-type"), b"")
    if not media.lower().startswith(_WORDED_MEDIA):
        return headers
    vary = [value for name, value in headers if name.lower() == b"vary"]
    kept = [(name, value) for name, value in headers if name.lower() != b"vary"]
    merged = b", ".join([*vary, b"Accept-Language"])
    return [*kept, (b"content-language", locale.encode()), (b"vary", merged)]
