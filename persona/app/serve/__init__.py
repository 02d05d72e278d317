"""``persona serve``: an OpenAI-compatible HTTP server for steered and monitored models.

Modules, one job each: :mod:`.backend` (the served models over the persona provider, its
batcher and protocol), :mod:`.openai_schema` (OpenAI request/response mapping), :mod:`.streaming`
(server-sent events), :mod:`.guard` (API key, body size and concurrency limits), :mod:`.errors`
(OpenAI error shape), :mod:`.monitor` (the live conversation page) and :mod:`.app` (routes).
User docs: docs/serve.md.
"""

from persona.app.serve.app import create_app
from persona.app.serve.backend import Backend
from persona.app.serve.guard import Limits

__all__ = ["Backend", "Limits", "create_app"]
