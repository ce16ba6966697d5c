"""The ASGI application: the page (``/``), the JSON API (``/api/...``), static files and headers."""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import BaseModel, ConfigDict, Field
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser

from rlsepi import __version__
from rlsepi.consumer import MAX_BYTES, ConsumerGenotypes, read_consumer_genotypes
from rlsepi.errors import RLSEpiError
from rlsepi.io import to_jsonable
from rlsepi.linear_risk import LinearRiskModel
from rlsepi.parameters import DEFAULT, Parameters
from rlsepi.risk import IndividualRisk, individual_risk, input_errors

__all__ = ["create_app", "CSP", "MAX_JSON_BYTES", "MAX_FORM_BYTES"]

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
"""Everything from this server, nothing from anywhere else; no inline script or style."""

MAX_JSON_BYTES = 64 * 1024
"""Largest JSON request body."""
MAX_FORM_BYTES = MAX_BYTES + 1024 * 1024
"""Largest form submission (a consumer file plus the form's fields)."""

STATIC = Path(__file__).parent / "static"
FIELDS = ("age", "sex", "pregnant", "trimester", "ferritin", "genotypes")
_EXPECTED = {
    "age": "a number of years",
    "sex": "'female' or 'male'",
    "pregnant": "true or false",
    "trimester": "1, 2 or 3",
    "ferritin": "a positive number in µg/L",
    "genotypes": 'an object of rsID to two alleles, e.g. {"rs2300478": "GT"}',
}


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


# --- the API's request ------------------------------------------------------------------------


class RiskRequest(BaseModel):
    """One person; every field is optional (an unknown input is averaged over the population)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    age: float | None = Field(None, description="age in completed years (adult)", examples=[34])
    sex: str | None = Field(None, description="'female' or 'male'", examples=["female"])
    pregnant: bool | None = Field(None, description="currently pregnant (a trimester implies it)")
    trimester: int | None = Field(None, description="trimester of pregnancy, 1-3", examples=[3])
    ferritin: float | None = Field(None, description="serum ferritin in µg/L", examples=[20])
    genotypes: dict[str, str | int] = Field(
        default_factory=dict, description="rsID to two alleles in any order (either strand where unambiguous) "
        "or the effect-allele count 0-2", examples=[{"rs2300478": "GT"}])


def _field_message(err: dict[str, Any]) -> tuple[str, str]:
    loc = [str(x) for x in err.get("loc", ()) if x != "body"]
    kind = err.get("type", "")
    if kind == "json_invalid":
        return "body", f"the request body is not valid JSON ({err.get('ctx', {}).get('error', 'parse error')})"
    if not loc:
        if kind == "missing":
            return "body", "the request has no body; send a JSON object such as {\"age\": 34, \"sex\": \"female\"}"
        return "body", "the request body must be a JSON object of the fields " + ", ".join(FIELDS)
    name = loc[0]
    if kind == "extra_forbidden":
        return name, f"'{name}' is not a field; the fields are {', '.join(FIELDS)}"
    key = name if len(loc) == 1 else f"{name}.{loc[1]}"
    got = json.dumps(err.get("input"), ensure_ascii=False, default=str)
    return key, f"{name} must be {_EXPECTED.get(name, 'of another type')}, got {got}"


def _errors_response(errors: dict[str, str]) -> JSONResponse:
    return JSONResponse({"errors": [{"field": k, "message": v} for k, v in errors.items()]}, status_code=422)


# --- the page's form --------------------------------------------------------------------------


@dataclass
class Page:
    """What the page template shows."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    result: IndividualRisk | None = None
    treated: IndividualRisk | None = None
    from_file: ConsumerGenotypes | None = None
    file_name: str | None = None


def _number(text: str, name: str, errors: dict[str, str], unit: str) -> float | None:
    text = text.strip().replace(",", ".")
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        errors[name] = f"{name} must be a number ({unit}), got '{text}'"
        return None
    if not math.isfinite(value):
        errors[name] = f"{name} must be a finite number ({unit}), got '{text}'"
        return None
    return value


class Site:
    """The page's state: model, parameters and templates (read-only after start)."""

    def __init__(self, model: LinearRiskModel | None, params: Parameters, provenance: dict[str, str]) -> None:
        self.model = model
        self.params = params
        self.provenance = provenance
        weights = dict(model.score_weights) if model is not None else {}
        by_id = {locus.rsid: locus for locus in params.loci}
        rsids = list(weights) or [locus.rsid for locus in params.loci]
        self.variants = [by_id[r] for r in rsids if r in by_id]
        self.threshold = float(params.ferritin.clinical_cuts[1])
        self.uses = model.uses if model is not None else frozenset({"age", "sex", "pregnancy", "ferritin", "genotypes"})
        self.env = Environment(loader=PackageLoader("rlsepi.web", "templates"),
                               autoescape=select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)
        self.env.globals.update(version=__version__)
        self.env.filters["pct"] = lambda p: f"{100 * p:.1f}%"
        self.template = self.env.get_template("page.html.j2")

    def risk(self, **inputs: Any) -> IndividualRisk:
        return individual_risk(**inputs, model=self.model, params=self.params)

    def compute(self, form: dict[str, str], upload: tuple[str, bytes] | None) -> Page:
        page = Page(values=dict(form))
        errors = page.errors
        age = _number(form.get("age", ""), "age", errors, "years")
        ferritin = _number(form.get("ferritin", ""), "ferritin", errors, "µg/L")
        sex = form.get("sex", "").strip() or None
        preg = form.get("pregnant", "").strip()
        pregnant = {"": None, "yes": True, "no": False}.get(preg)
        if preg not in ("", "yes", "no"):
            errors["pregnant"] = f"pregnancy must be yes, no or not given, got '{preg}'"
        tri = form.get("trimester", "").strip()
        trimester = None
        if tri:
            if tri in ("1", "2", "3"):
                trimester = int(tri)
            else:
                errors["trimester"] = f"trimester must be 1, 2 or 3, got '{tri}'"
        genotypes = {v.rsid: form.get(f"g_{v.rsid}", "").strip() for v in self.variants}
        if upload is not None:
            page.file_name = upload[0]
            try:
                page.from_file = read_consumer_genotypes(upload[1], rsids=[v.rsid for v in self.variants])
            except RLSEpiError as exc:
                errors["file"] = str(exc)
            else:
                for rsid, call in page.from_file.genotypes.items():
                    if not genotypes.get(rsid):  # a typed genotype wins over the file
                        genotypes[rsid] = call
                        page.values[f"g_{rsid}"] = call
        genotypes = {k: v for k, v in genotypes.items() if v}
        inputs = {"age": age, "sex": sex, "pregnant": pregnant, "trimester": trimester, "ferritin": ferritin,
                  "genotypes": genotypes}
        for key, message in input_errors(**inputs, model=self.model, params=self.params).items():
            errors.setdefault(key.replace("genotypes.", "g_"), message)
        if errors:
            return page
        try:
            page.result = self.risk(**inputs)
            if "ferritin" in self.uses and (ferritin is None or ferritin < self.threshold):
                page.treated = self.risk(**(inputs | {"ferritin": self.threshold}))
        except RLSEpiError as exc:
            errors["form"] = str(exc)
        return page

    def render(self, page: Page) -> str:
        return self.template.render(page=page, site=self, icons=_icons, score_bars=_score_bars)


def _icons(k: int) -> list[tuple[float, float, bool]]:
    """Positions of 100 people in a 10 x 10 grid, the first ``k`` (row by row from the bottom) marked."""
    cells = []
    for i in range(100):
        row, col = divmod(i, 10)
        cells.append((col * 12.0, (9 - row) * 16.0, i < k))
    return cells


def _score_bars(score: float, params: Parameters) -> dict[str, Any]:
    """The polygenic score's exact population distribution as bars (drawing coordinates only).

    The score takes few distinct values (3^k genotype combinations at most), so its
    distribution is drawn as it is, from :func:`rlsepi.cohort.genetic_distribution` (Hardy-
    Weinberg, independent loci), not as a smooth curve: bars below the person's score are
    shaded, the person's own bar is marked.
    """
    import numpy as np

    from rlsepi.cohort import genetic_distribution

    values, probs = genetic_distribution(params)
    width, height, pad = 300.0, 80.0, 4.0
    lo, hi = float(values.min()), float(values.max())
    span = hi - lo if hi > lo else 1.0

    def x_of(v: float) -> float:
        return pad + (v - lo) / span * (width - 2 * pad)

    bar = max(1.0, min(6.0, 0.8 * (width - 2 * pad) / len(values)))
    top = float(probs.max())
    tol = 1e-9 * max(1.0, abs(score))
    bars = []
    for v, p in zip(values.tolist(), probs.tolist(), strict=True):
        h = p / top * (height - 6)
        kind = "this" if abs(v - score) <= tol else ("below" if v < score else "above")
        bars.append({"x": round(x_of(v) - bar / 2, 2), "y": round(height - h, 2), "w": round(bar, 2),
                     "h": round(h, 2), "kind": kind})
    lower = float(probs[values < score - tol].sum())
    same = float(probs[np.abs(values - score) <= tol].sum())
    return {"bars": bars, "x": round(x_of(min(max(score, lo), hi)), 1), "width": width, "height": height,
            "lower": lower, "same": same}


# --- request bodies, size-limited and in memory -----------------------------------------------


async def _capped(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge(limit)
        yield chunk


async def _read_form(request: Request) -> tuple[dict[str, str], tuple[str, bytes] | None]:
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        parser = MultiPartParser(request.headers, _capped(request, MAX_FORM_BYTES), max_files=1, max_fields=50,
                                 max_part_size=64 * 1024)
        parser.spool_max_size = MAX_FORM_BYTES + 1  # the uploaded file stays in memory, never on disk
    elif ctype.startswith("application/x-www-form-urlencoded") or not ctype:
        parser = FormParser(request.headers, _capped(request, MAX_FORM_BYTES))  # type: ignore[assignment]
    else:
        raise RLSEpiError(f"the form was sent as '{ctype}'; send it as multipart/form-data")
    form = await parser.parse()
    values: dict[str, str] = {}
    upload = None
    for key, value in form.multi_items():
        if isinstance(value, str):
            values[key] = value
        elif key == "file" and value.filename:
            data = await value.read()
            await value.close()
            if data:
                upload = (value.filename, data)
    return values, upload


# --- headers ----------------------------------------------------------------------------------

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


class SecurityHeaders:
    """Adds the CSP and no-store, no-sniff, no-referrer headers to every response, and answers
    413 to a JSON body to ``/api/risk`` larger than :data:`MAX_JSON_BYTES` (read in memory up
    to the limit, then handed on)."""

    HEADERS = [
        (b"content-security-policy", CSP.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
    ]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        static = path.startswith("/static/")

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", [])) + self.HEADERS
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        if path == "/api/risk" and scope.get("method") == "POST":
            body = await self._body(scope, receive)
            if body is None:
                response = JSONResponse({"errors": [{"field": "body", "message":
                                                     f"the request is larger than {MAX_JSON_BYTES:,} bytes"}]},
                                        status_code=413)
                await response(scope, receive, send_with_headers)
                return
            sent = False

            async def replay() -> dict[str, Any]:
                nonlocal sent
                if sent:
                    return await receive()
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}

            receive = replay
        await self.app(scope, receive, send_with_headers)

    @staticmethod
    async def _body(scope: Scope, receive: Any) -> bytes | None:
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > MAX_JSON_BYTES:
                return None
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > MAX_JSON_BYTES:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


# --- the application --------------------------------------------------------------------------


def create_app(*, model: LinearRiskModel | None = None, params: Parameters = DEFAULT,
               provenance: dict[str, str] | None = None) -> FastAPI:
    """The ASGI application of ``rlsepi serve``.

    Parameters
    ----------
    model : LinearRiskModel, optional
        Default: the calibrated generating model of ``params``; a fitted model from
        :func:`rlsepi.risk_models.load_risk_model`.
    params : Parameters
        The population that fills in unknown inputs.
    provenance : dict, optional
        Lines describing where the model comes from, shown on the page and its print view.

    Returns
    -------
    fastapi.FastAPI
    """
    if provenance is None:
        provenance = {"model": "the calibrated generating model of rlsepi's synthetic population",
                      "parameters": f"rlsepi {__version__} published parameters (sha256 {params.digest()[:12]})"}
    site = Site(model, params, provenance)
    app = FastAPI(
        title="rlsepi illustrative RLS risk", version=__version__, docs_url=None, redoc_url=None,
        description="Illustrative absolute risk of restless legs syndrome for one person, from the rlsepi "
        "package. POST /api/risk takes the fields of 'rlsepi risk' and returns the JSON of 'rlsepi risk --json'.",
    )
    app.state.site = site
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors: dict[str, str] = {}
        for err in exc.errors():
            key, message = _field_message(err)
            errors.setdefault(key, message)
        return _errors_response(errors)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return JSONResponse({"errors": [{"field": "body", "message": f"the request is larger than {exc.limit:,} bytes"}]},
                            status_code=413)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(site.render(Page()))

    @app.post("/", response_class=HTMLResponse, include_in_schema=False)
    async def submit(request: Request) -> HTMLResponse:
        try:
            form, upload = await _read_form(request)
        except BodyTooLarge as exc:
            page = Page(errors={"file": f"the upload is larger than {exc.limit:,} bytes; a consumer raw-data file "
                                "is about 15-25 MB"})
            return HTMLResponse(site.render(page), status_code=413)
        except (MultiPartException, RLSEpiError) as exc:
            return HTMLResponse(site.render(Page(errors={"form": f"the form could not be read: {exc}"})),
                                status_code=400)
        # 200 also with errors: the page shows them beside their fields (an error status would be
        # logged by the browser as a failed load); the JSON API answers 422
        return HTMLResponse(site.render(site.compute(form, upload)))

    @app.post("/api/risk", summary="Illustrative risk for one person",
              responses={422: {"description": "invalid input: one message per field"}})
    def api_risk(person: RiskRequest) -> JSONResponse:
        """The JSON of ``rlsepi risk --json`` for the same fields."""
        # a plain function: run in the worker threads (numpy releases the GIL; measured twice the
        # throughput of computing on the event loop with 8 clients)
        inputs = person.model_dump()
        errors = input_errors(**inputs, model=site.model, params=site.params)
        if errors:
            return _errors_response(errors)
        try:
            result = site.risk(**inputs)
        except RLSEpiError as exc:
            return _errors_response({"body": str(exc)})
        return JSONResponse(to_jsonable(result.to_dict()))

    @app.post("/api/genotype-file", summary="Read the score's variants from a consumer raw-data file",
              openapi_extra={"requestBody": {"content": {"text/plain": {"schema": {"type": "string"}}},
                                             "required": True}},
              responses={422: {"description": "not a 23andMe or AncestryDNA raw-data file"},
                         413: {"description": "larger than the limit"}})
    async def api_genotype_file(request: Request) -> JSONResponse:
        """The file is the request body (text, 23andMe or AncestryDNA layout); it is read in memory only."""
        data = b"".join([chunk async for chunk in _capped(request, MAX_BYTES)])
        try:
            found = read_consumer_genotypes(data, rsids=[v.rsid for v in site.variants])
        except RLSEpiError as exc:
            return _errors_response({"file": str(exc)})
        return JSONResponse(found.to_dict())

    app.add_middleware(SecurityHeaders)
    return app
