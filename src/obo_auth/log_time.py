"""mlflow runs an agent's ``predict`` while logging it: whose identity that run has.

``mlflow.pyfunc.log_model`` calls ``predict`` on an input example to validate a ChatAgent's
or ResponsesAgent's output, and again to validate the serving input. At log time there is
no end user. obo_auth never substitutes one (not the agent's identity, not the developer's
login), so, during :func:`obo_auth.log_model` only:

- inside ``with obo_auth.as_user(token, host=...):`` the run acts as that user, and one
  line says so;
- otherwise an agent's ``predict`` is not run: it answers a stand-in message that passes
  mlflow's output check, and one line says so. Any other decorated call raises
  NoInvokerError, as it would anywhere outside a request.

The mode lives in a ContextVar set around mlflow's call, so it never reaches a served
request or another thread. An asyncio task created during the call copies the variable:
what it copies is a run that goes inert when ``log_model`` returns, so the task's later
calls are ordinary ones. Inside ``as_user`` there is never a stand-in.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from obo_auth.errors import NoInvokerError
from obo_auth.invoker import explicit_user

logger = logging.getLogger("obo_auth")

STAND_IN_ANSWER = "(obo_auth: predict was not run while logging: there was no end user to run it as.)"

class _SkippedRun:
    """One log_model call's skip mode: live until the call returns, for every copy of the context."""

    def __init__(self) -> None:
        self.live = True
        self.announced: list[str] = []  # the agents already announced, so each gets one line


_skipping: ContextVar[_SkippedRun | None] = ContextVar("obo_auth_log_time_skipping", default=None)


@contextmanager
def validation_run() -> Iterator[None]:
    """The identity mlflow's log-time ``predict`` runs with, for the duration of a log_model call."""
    user = explicit_user()
    if user is not None:
        where = f" at {user.host}" if user.host else ""
        logger.warning("obo_auth: mlflow runs the agent's predict while logging it, as the user given to obo_auth.as_user%s.", where)
        yield
        return
    run = _SkippedRun()
    reset = _skipping.set(run)
    try:
        yield
    finally:
        run.live = False  # inert in any context that copied it (asyncio tasks)
        _skipping.reset(reset)


def stand_in(function: Callable[..., Any], args: Sequence[Any]) -> Any | None:
    """The answer a skipped log-time run gives, or None when no log-time run is being skipped.

    Raises NoInvokerError for a decorated call that is not an agent's ``predict``: there is
    nothing to stand in for it, and running it would need a user.
    """
    run = _skipping.get()
    if run is None or not run.live or explicit_user() is not None:
        return None
    answer = _agent_answer(function, args)
    if answer is None:
        raise NoInvokerError(
            f"{function.__qualname__} ran while the model was being logged, with no end user: log it inside "
            "`with obo_auth.as_user(token, host=...):` to run it as a user."
        )
    name = f"{type(args[0]).__name__}.predict"
    if name not in run.announced:
        run.announced.append(name)
        logger.warning(
            "obo_auth: mlflow's log-time run of %s got a stand-in answer, not the agent's: there is no end user "
            "at log time and obo_auth never runs an agent as your own login. To run it as a user, call "
            "log_model inside `with obo_auth.as_user(token, host=...):`.",
            name,
        )
    return answer


def _agent_answer(function: Callable[..., Any], args: Sequence[Any]) -> Any | None:
    if function.__name__ != "predict" or not args:
        return None
    from mlflow.pyfunc import ChatAgent, ResponsesAgent

    agent = args[0]
    if isinstance(agent, ChatAgent):
        from mlflow.types.agent import ChatAgentMessage, ChatAgentResponse

        return ChatAgentResponse(messages=[ChatAgentMessage(id=str(uuid.uuid4()), role="assistant", content=STAND_IN_ANSWER)])
    if isinstance(agent, ResponsesAgent):
        from mlflow.types.responses import ResponsesAgentResponse

        return ResponsesAgentResponse(output=[agent.create_text_output_item(text=STAND_IN_ANSWER, id=str(uuid.uuid4()))])
    return None
