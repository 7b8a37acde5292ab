"""Live learning of the query-domain centre (services/adaptation.py): its state and its controls, transport-neutral.

`GET /adaptation` answers the learner's state (counts, refits, last step; no vector, no client); `POST
/adaptation` `{"action": "freeze" | "unfreeze" | "reset" | "refit"}` controls it (on AWS a refit is asked of the
scheduled refit function, which runs it outside the request path). Without a learner (live
learning off, VISUAL_SEARCH_ADAPT_LIVE_EVERY unset) the state is `{"enabled": false}` and controls are refused.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from visual_search.api.results import ApiResult, error_result
from visual_search.core.errors import InvalidRequestError
from visual_search.core.wire import json_object
from visual_search.services.adaptation import QueryDomainLearner


class AdaptationAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["freeze", "unfreeze", "reset", "refit"]


class AdaptationApi:
    def __init__(self, learner: QueryDomainLearner | None = None):
        self.learner = learner

    def state(self) -> ApiResult:
        return 200, self._state()

    def control(self, body: bytes) -> ApiResult:
        try:
            action = AdaptationAction.model_validate(json_object(body)).action
            if self.learner is None:
                raise InvalidRequestError(
                    "live learning is off on this server (set VISUAL_SEARCH_ADAPT_LIVE_EVERY; on AWS, the stack's "
                    "LiveLearningEvery parameter)",
                    code="adaptation_off",
                )
            if action == "refit":
                self.learner.refit()
            else:
                getattr(self.learner, action)()
            return 200, self._state()
        except Exception as exc:  # noqa: BLE001 - the API boundary
            return error_result(exc)

    def _state(self) -> dict:
        return {"enabled": False} if self.learner is None else {"enabled": True, **self.learner.state()}
