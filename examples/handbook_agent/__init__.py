"""The example handbook agent: where its files are, and how to log them with obo_auth."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
CHAT_AGENT = HERE / "chat_agent.py"
RESPONSES_AGENT = HERE / "responses_agent.py"
LOGIC = HERE / "handbook_logic.py"


def log(agent_file: Path = CHAT_AGENT, name: str = "handbook_agent"):
    """Logs the agent with obo_auth.log_model: its auth policy comes from RESOURCES."""
    import sys

    import obo_auth

    sys.path.insert(0, str(HERE))  # the models-from-code file imports handbook_logic
    try:
        from handbook_logic import RESOURCES
    finally:
        sys.path.remove(str(HERE))
    # pip requirements are read from the agent's imports (obo_auth.log_model).
    return obo_auth.log_model(str(agent_file), resources=RESOURCES, name=name, code_paths=[str(LOGIC)])
