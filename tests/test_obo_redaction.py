"""No token in any repr, log line or exception of the OBO core (canary tokens, searched for).

The request-level tests run on each runtime (conftest.runtime: Model Serving and Apps).
Sibling: test_auth.py does the same for the local workspace.
"""

from __future__ import annotations

import logging

import pytest

import obo_auth
from obo_auth import NoInvokerError, RequestEndedError
from obo_auth.credentials import RequestInvoker
from obo_auth.token import UserToken


def test_nothing_obo_auth_shows_contains_the_token(runtime, workspace, invoker_token, caplog, capsys):
    caplog.set_level(logging.DEBUG)  # every logger, including databricks-sdk's request logging
    canary = invoker_token(workspace, "alice")
    shown: list[str] = []

    @obo_auth.on_behalf_of_user
    def predict():
        req = obo_auth.current_request()
        req.user_client.current_user.me()
        config = req.user_client.config
        shown.extend([repr(req), str(req), repr(config), str(config), str(config.token), repr(config.token)])
        return req

    with runtime.user(canary, workspace.url):
        req = predict()
    with pytest.raises(RequestEndedError) as ended:
        req.user_client.current_user.me()
    shown += [str(ended.value), repr(ended.value), repr(UserToken(canary, "test")), repr(RequestInvoker(workspace.url))]
    out, err = capsys.readouterr()
    shown += [caplog.text, out, err]
    assert all(canary not in text for text in shown)
    assert UserToken(canary, "test").fingerprint in repr(UserToken(canary, "test"))


def test_a_refused_request_error_does_not_echo_the_token(runtime, workspace, caplog):
    caplog.set_level(logging.DEBUG)
    canary = workspace.issue_token("bob", scopes=["serving.serving-endpoints"])

    @obo_auth.on_behalf_of_user
    def predict():
        obo_auth.current_request().user_client.vector_search_indexes.get_index("main.docs.handbook_index")

    with runtime.user(canary, workspace.url), pytest.raises(Exception) as raised:
        predict()
    assert "Invalid scope" in str(raised.value)
    assert canary not in str(raised.value) and canary not in repr(raised.value) and canary not in caplog.text


def test_blank_tokens_are_refused_without_echoing_them():
    with pytest.raises(ValueError, match="empty"):
        UserToken("   ", "test")
    with pytest.raises(NoInvokerError):
        obo_auth.on_behalf_of_user(lambda: None)()


def test_scrub_replaces_anything_token_shaped():
    from obo_auth.redact import fingerprint, scrub

    pat = "dapi" + "0123456789abcdef" * 2
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
    scrubbed = scrub(f"failed with {pat} and Bearer {jwt}; also secret-xyz", ["secret-xyz"])
    assert pat not in scrubbed and jwt not in scrubbed and "secret-xyz" not in scrubbed
    assert fingerprint(pat) in scrubbed and fingerprint(jwt) in scrubbed
