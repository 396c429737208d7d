"""The example people agent (a supervisor over Genie and the handbook agent): where its files
are, and how to log them with obo_auth."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
HANDBOOK = HERE.parent / "handbook_agent"  # its logic is the handbook sub-agent
CHAT_AGENT = HERE / "people_chat_agent.py"
CODE = [HERE / "people_logic.py", HANDBOOK / "handbook_logic.py"]


def log(agent_file: Path = CHAT_AGENT, name: str = "people_agent"):
    """Logs the agent with obo_auth.log_model: its auth policy comes from RESOURCES."""
    import sys

    import obo_auth

    sys.path[:0] = [str(HERE), str(HANDBOOK)]  # the models-from-code file imports people_logic, which imports handbook_logic
    try:
        from people_logic import RESOURCES
    finally:
        sys.path.remove(str(HERE))
        sys.path.remove(str(HANDBOOK))
    return obo_auth.log_model(str(agent_file), resources=RESOURCES, name=name, code_paths=[str(path) for path in CODE])
