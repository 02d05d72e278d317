"""Routes: ``GET /v1/models``, ``POST /v1/chat/completions``, the traits list, the monitor and
its colour baseline.

Every failure a client can cause is answered in the OpenAI error shape with its status code;
an unexpected one is a 500 for that request only, never the end of the server.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from fastapi import FastAPI, Request
from inspect_ai.model import GenerateConfig
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse

from persona.app.serve import openai_schema as oa
from persona.app.serve.backend import Backend
from persona.app.serve.baseline import Baselines, as_json
from persona.app.serve.errors import ApiError, error_body, error_response
from persona.app.serve.guard import Guard, Limits
from persona.app.serve.monitor import PAGE
from persona.app.serve.streaming import events

log = logging.getLogger("persona.serve")


def create_app(backend: Backend, limits: Limits | None = None, api_key: str | None = None):
    """The ASGI app serving ``backend`` (wrapped in the API-key and body-size guard)."""
    limits = limits or Limits()
    app = FastAPI(title="persona serve", docs_url=None, redoc_url=None, openapi_url=None)
    started = int(time.time())

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(error_body(exc.status_code, str(exc.detail)), exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request failed")
        message = (
            f"internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        )
        return JSONResponse(error_body(500, message), 500)

    @app.get("/")
    async def root(request: Request) -> RedirectResponse:
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"/monitor{query}")

    @app.get("/monitor")
    async def monitor() -> HTMLResponse:
        return HTMLResponse(PAGE)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        data = [
            {"id": mid, "object": "model", "created": started, "owned_by": "persona"}
            for mid in backend.model_ids
        ]
        return {"object": "list", "data": data}

    @app.get("/v1/persona/traits")
    async def traits() -> dict[str, Any]:
        """Traits with a vector for the base model (for the monitor's sliders)."""
        num_layers, found = await backend.traits()
        return {
            "model": backend.name,
            "num_layers": num_layers,
            "traits": [{"name": t.name, "layer": t.layer} for t in found],
        }

    baselines = Baselines(backend)

    @app.get("/v1/persona/baseline")
    async def baseline(trait: str, layer: int) -> dict[str, Any]:
        """The monitor's colour baseline for ``trait`` at ``layer`` (docs/serve.md)."""
        return as_json(await baselines.get(trait, layer))

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ApiError(400, f"the request body is not valid JSON: {e}") from None
        req = oa.parse_request(body, limits)
        want_logprobs = bool(req.logprobs)
        config = GenerateConfig(
            max_tokens=oa.max_tokens(req, limits),
            temperature=req.temperature if req.temperature is not None else 1.0,
            top_p=req.top_p,
            stop_seqs=oa.stop_seqs(req),
            seed=req.seed,
            logprobs=want_logprobs,
            top_logprobs=req.top_logprobs if want_logprobs else None,
        )
        calls = await backend.prepare(
            req.model, oa.inspect_messages(req), config, req.persona, req.n
        )
        cid = oa.completion_id()
        if not req.stream:
            outputs = await backend.complete(calls)
            return JSONResponse(oa.completion_json(cid, req.model, outputs, want_logprobs))
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        stream = backend.stream(calls)
        sse = events(cid, req.model, len(calls), stream, want_logprobs, include_usage)
        return StreamingResponse(sse, media_type="text/event-stream")

    return Guard(app, api_key, limits)
