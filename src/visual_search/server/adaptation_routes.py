"""Learning the query-domain centre from the server's own searches (services/adaptation.py), and its controls.

On when VISUAL_SEARCH_ADAPT_LIVE_EVERY > 0 (refit after that many new queries). Routes:
- `GET /adaptation` (read level): the learner's state (counts, refits, last step; no vector, no client);
- `POST /adaptation` (write level) `{"action": "freeze" | "unfreeze" | "reset" | "refit"}`.
`GET /stats` shows the same state (search_api.py). Each search's client is its address (request.client.host),
hashed with a per-process salt and kept only as a count for the current refit window.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Literal

from fastapi import Depends, FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from visual_search.core.colour import colour_dimension_of
from visual_search.core.errors import InvalidRequestError
from visual_search.core.settings import Settings
from visual_search.server.access import api_key_checker
from visual_search.services.adaptation import LearningPolicy, QueryDomainLearner, current_client

LEARNER_STATE = "query_domain_learner"  # app.state attribute


class AdaptationAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["freeze", "unfreeze", "reset", "refit"]


def add_adaptation_routes(app: FastAPI, settings: Settings, *, write_check) -> None:
    """Registers the routes and, when live learning is on, the learner (attached to the search service at start)
    and a middleware that tells it which client each search comes from. `write_check` is the write-level
    dependency of the catalogue routes."""
    services = app.state.services
    reads = [Depends(api_key_checker(settings.api_key))]
    learner: QueryDomainLearner | None = None
    if settings.adapt_live_every > 0:
        policy = LearningPolicy(
            refit_every=settings.adapt_live_every,
            max_step=settings.adapt_live_max_step,
            max_client_share=settings.adapt_live_client_share,
        )

        def writer_index():
            # The process's one writer (shared with a folder watcher and POST /items): a refit takes its turn.
            return app.state.catalogue_writer_factory().index

        learner = QueryDomainLearner(
            policy,
            colour_dimension=0,  # set from the model once the search service is built (below)
            index=writer_index,
            background=True,
        )
        setattr(app.state, LEARNER_STATE, learner)
        _attach_on_start(app, services, learner)
        app.add_middleware(_ClientMiddleware)

    @app.get("/adaptation", responses={401: {}}, dependencies=reads, tags=["adaptation"])
    async def adaptation_state() -> JSONResponse:
        """Live learning of the query-domain centre: on or off, counts, refits (never a photo or a vector)."""
        return JSONResponse(_state(learner))

    @app.post("/adaptation", responses={400: {}, 401: {}, 403: {}}, dependencies=[write_check], tags=["adaptation"])
    async def adaptation_control(body: AdaptationAction) -> JSONResponse:
        """Freeze, unfreeze or reset (forget the running sum) live learning, or refit now."""
        if learner is None:
            raise InvalidRequestError(
                "live learning is off on this server (set VISUAL_SEARCH_ADAPT_LIVE_EVERY)", code="adaptation_off"
            )
        if body.action == "refit":
            await run_in_threadpool(learner.refit)
        else:
            getattr(learner, body.action)()
        return JSONResponse(_state(learner))


def _state(learner: QueryDomainLearner | None) -> dict:
    return {"enabled": False} if learner is None else {"enabled": True, **learner.state()}


def _attach_on_start(app: FastAPI, services, learner: QueryDomainLearner) -> None:
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(running_app):
        async with inner(running_app) as state:
            api = await services.ready()
            learner.colour_dimension = colour_dimension_of(api.service.embedder.model_id)
            api.service.learner = learner
            yield state
            learner.freeze()
            await run_in_threadpool(learner.wait)

    app.router.lifespan_context = lifespan


class _ClientMiddleware:
    """Sets services.adaptation.current_client for the request (pure ASGI, so the context reaches the route's
    worker thread)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        token = current_client.set(client[0] if client else None)
        try:
            await self.app(scope, receive, send)
        finally:
            current_client.reset(token)
