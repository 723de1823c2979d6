"""Answering a page request: the HTML page from its Jinja2 template, or its JSON twin from the same data.

Pages are autoescaped and sent with headers that keep marked data out of caches and other sites' frames, and a
Content-Security-Policy that runs only the server's own scripts (figures travel as inert JSON blocks).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse, Response
from markupsafe import Markup

from heistwatch.share.report_html import template_environment

Format = Literal["html", "json"]
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
}
_JSON_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})

_environment = template_environment("web/templates")
_environment.filters["tlp_label"] = lambda value: f"TLP:{str(value).upper()}"


def json_block(data: Any) -> Markup:
    """JSON that is safe inside a `<script type="application/json">` block: no value can close it."""
    return Markup(json.dumps(jsonable_encoder(data), ensure_ascii=False).translate(_JSON_ESCAPES))


_environment.filters["json_block"] = json_block


def respond(template: str, data: dict[str, Any], fmt: Format, *, page: dict[str, Any] | None = None) -> Response:
    """The JSON twin (`data`) or the page rendered from `data` plus page-only values (figures, links)."""
    if fmt == "json":
        return JSONResponse(jsonable_encoder(data), headers=SECURITY_HEADERS)
    text = _environment.get_template(template).render(**data, **(page or {}))
    return HTMLResponse(text, headers=SECURITY_HEADERS)
