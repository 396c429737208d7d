"""Asking an agent object in this process a question, as a user, the way local serving would.

A user's token is minted with the agent as actor, as Model Serving mints one for each
request, and revoked when the block it was minted for ends: a client or tool that kept it
then fails loudly, and the audit attributes every call to its block by the token's
fingerprint. The agent's own identity (``req.system_client``) comes from the environment,
as outside serving it always does.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest

from obo_auth.testing.asking import Reply, answer_text, request_body, streamed_text

if TYPE_CHECKING:
    from obo_auth.local import LocalWorkspace

# For the agent's block, a developer's login is cleared as serving's runtime clears it (its
# variables, and ~/.databrickscfg's [DEFAULT] profile, which the SDK tries before others):
# beside the agent's client credentials it would make databricks-sdk refuse the mix, or act
# as the developer. The config file is pointed here instead:
_NO_CONFIG_FILE = os.path.join(os.devnull, "no-databrickscfg")  # under a file: it cannot exist


def interface_of(agent: Any) -> str:
    """``chat_agent`` or ``responses_agent``; TypeError in one line for anything else."""
    from mlflow.pyfunc import ChatAgent, ResponsesAgent

    if isinstance(agent, ChatAgent):
        return "chat_agent"
    if isinstance(agent, ResponsesAgent):
        return "responses_agent"
    name = agent.__name__ if isinstance(agent, type) else type(agent).__name__
    what = f"the class {name}" if isinstance(agent, type) else ("an " if name[:1].lower() in "aeiou" else "a ") + name
    raise TypeError(f"expected an agent object (an mlflow ChatAgent or ResponsesAgent) or a served agent, got {what}")


def has_own_stream(agent: Any) -> bool:
    """Whether the agent implements ``predict_stream`` (mlflow's own raises NotImplementedError)."""
    from mlflow.pyfunc import ChatAgent, ResponsesAgent

    base = ChatAgent if interface_of(agent) == "chat_agent" else ResponsesAgent
    return type(agent).predict_stream is not base.predict_stream


@contextmanager
def agent_environment(workspace: LocalWorkspace, agent: str) -> Iterator[None]:
    """The agent's own identity (OAuth M2M as ``agent``) in the environment, and no other login,
    for the block only."""
    __tracebackhide__ = True  # pytest --showlocals would print this frame's locals: the client secret
    with pytest.MonkeyPatch.context() as patch:
        from obo_auth.serving.runtime import LOGIN_VARIABLE_PREFIXES

        for name in [name for name in os.environ if name.startswith(LOGIN_VARIABLE_PREFIXES)]:
            patch.delenv(name)
        patch.setenv("DATABRICKS_CONFIG_FILE", _NO_CONFIG_FILE)
        for name, value in workspace.environment_for(agent).items():
            patch.setenv(name, value)
        yield


@contextmanager
def user_token(workspace: LocalWorkspace, user: str, *, agent: str, scopes: Iterable[str] | None) -> Iterator[str]:
    """Decorated calls in the block run as ``user``, with a token minted for the agent; it is
    revoked when the block ends, saying so in the audit of any later use."""
    __tracebackhide__ = True  # pytest --showlocals would print this frame's locals: the token
    import obo_auth
    from obo_auth.serving.revocation import REQUEST_ENDED

    token = workspace.issue_token(user, scopes, actor=agent)
    try:
        with obo_auth.as_user(token, host=workspace.url):
            yield token
    finally:
        workspace.state.identity.revoke(token, REQUEST_ENDED)


def predict(agent: Any, question: str, *, stream: bool = False) -> Reply:
    """``agent.predict`` (or ``predict_stream``) with one user question, as serving would call it."""
    interface = interface_of(agent)
    body = request_body(interface, question)
    if interface == "chat_agent":
        from mlflow.types.agent import ChatAgentMessage

        arguments = ([ChatAgentMessage(**message) for message in body["messages"]],)
    else:
        from mlflow.types.responses import ResponsesAgentRequest

        arguments = (ResponsesAgentRequest(**body),)
    if stream:
        events = [_as_json(event) for event in agent.predict_stream(*arguments)]
        return Reply(200, streamed_text(events), events)
    response = _as_json(agent.predict(*arguments))
    return Reply(200, answer_text(response), response)


def _as_json(value: Any) -> Any:
    """What serving would send for ``value``: mlflow's pydantic responses as plain JSON values."""
    return value.model_dump(exclude_none=True) if hasattr(value, "model_dump") else value
