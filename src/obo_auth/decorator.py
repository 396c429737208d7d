"""``@on_behalf_of_user``: the serving edge of obo_auth.

On entry it reads the invoker's token once (context.open_request) and opens a RequestContext
that lasts until the function returns or, for a stream, until the generator is exhausted,
closed or garbage-collected (a stream's entry is its first item: the wrapper must stay a
generator function), and never past its maximum lifetime. For a stream the context is set
around each step of the generator only, so it never leaks into the code that consumes the
stream, and a stream pulled inside another request fails rather than mix two users' data.
A decorated call inside a live request joins that request instead of opening one.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from contextvars import Token
from typing import Any, TypeVar, overload

from obo_auth import log_time
from obo_auth.context import DEFAULT_MAX_REQUEST_SECONDS, RequestContext, open_request, strict_call
from obo_auth.errors import CrossRequestError
from obo_auth.scope import current as _current

F = TypeVar("F", bound=Callable[..., Any])


@overload
def on_behalf_of_user(function: F) -> F: ...
@overload
def on_behalf_of_user(*, strict: bool = False, max_request_seconds: float = DEFAULT_MAX_REQUEST_SECONDS) -> Callable[[F], F]: ...


def on_behalf_of_user(
    function: F | None = None, *, strict: bool = False, max_request_seconds: float = DEFAULT_MAX_REQUEST_SECONDS
) -> F | Callable[[F], F]:
    """Run ``function`` (``predict``, ``predict_stream``, or any function or generator) as its invoker.

    ``strict=True`` makes every ``req.optional(...)`` fail loudly, as ``req.require(...)`` does.
    ``max_request_seconds`` bounds how long a request (above all a stream nobody closes) may act
    for its user; the default is just above Model Serving's own 297 s request limit.
    Called inside a live request, the function joins it, with that request's lifetime; its
    ``strict=True`` still applies while it runs (a joining call may make its request stricter,
    never laxer), e.g. a handler of a request OboAppMiddleware opened.
    """
    if not isinstance(max_request_seconds, (int, float)) or not max_request_seconds > 0:
        raise ValueError(f"max_request_seconds must be a positive number of seconds, not {max_request_seconds!r}.")
    if function is None:
        return lambda f: _wrap(f, strict, max_request_seconds)
    return _wrap(function, strict, max_request_seconds)


# What _enter returns and _leave takes: the request's ContextVar token, and strict_call's (or None).
# A plain tuple: this runs on every request and every step of a stream.
_Entered = tuple[Token, "Token | None"]


def _enter(context: RequestContext, strict: bool) -> _Entered:
    """Sets ``context`` as the request in progress; a ``strict=True`` call makes its request
    strict while it runs, also when it joins a request opened without ``strict`` (e.g. by
    OboAppMiddleware): a joining call may make its request stricter, never laxer."""
    return _current.set(context), strict_call.set(True) if strict else None


def _leave(entered: _Entered) -> None:
    request, strict = entered
    if strict is not None:
        strict_call.reset(strict)
    _current.reset(request)


def _step_into(context: RequestContext, strict: bool) -> _Entered:
    """Sets ``context`` for one step of its stream, unless the step is pulled inside another request.

    A stream carries its own user's data: stepped inside another request it would hand that
    data to the other request's user, so it fails (and, ending, releases its request) instead.
    """
    consumer = _current.get()
    if consumer is not None and consumer is not context:
        raise CrossRequestError(
            "A stream of one request was pulled inside another request; obo_auth ended it rather than mix two "
            "users' data in one answer. Consume a request's stream only outside other requests, or within its own."
        )
    return _enter(context, strict)


def _steps(context: RequestContext, owned: bool, generator: Iterator[Any], strict: bool) -> Iterator[Any]:
    """Runs each step of ``generator`` inside ``context``; ends the context (if ``owned``) when the stream ends."""
    try:
        while True:
            reset = _step_into(context, strict)
            try:
                item = next(generator)
            except StopIteration as stop:
                return stop.value
            finally:
                _leave(reset)
            yield item
    finally:
        reset = _enter(context, strict)
        try:
            generator.close()  # its own finally blocks still run as the user
        finally:
            _leave(reset)
            if owned:
                context.end()


def _wrap(function: F, strict: bool, max_seconds: float) -> F:
    wrapper = _wrapper(function, strict, max_seconds)
    # Lets local serving tell an obo_auth agent (safe to serve concurrently) from one that
    # reads the runtime's process-wide token slot itself (served one request at a time).
    wrapper.__obo_auth_on_behalf_of_user__ = True  # type: ignore[attr-defined]
    return wrapper


def _wrapper(function: F, strict: bool, max_seconds: float) -> F:
    def enter() -> tuple[RequestContext, bool]:
        return open_request(strict=strict, max_seconds=max_seconds)  # fails closed: NoInvokerError

    if inspect.isasyncgenfunction(function):

        @functools.wraps(function)
        async def async_stream(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            generator = function(*args, **kwargs)  # before entering: bad arguments must not leave a request open
            context, owned = enter()
            try:
                while True:
                    reset = _step_into(context, strict)
                    try:
                        item = await generator.__anext__()
                    except StopAsyncIteration:
                        return
                    finally:
                        _leave(reset)
                    yield item
            finally:
                reset = _enter(context, strict)
                try:
                    await generator.aclose()  # its own finally blocks still run as the user
                finally:
                    _leave(reset)
                    if owned:
                        context.end()

        return async_stream  # type: ignore[return-value]

    if inspect.isgeneratorfunction(function):

        @functools.wraps(function)
        def stream(*args: Any, **kwargs: Any) -> Iterator[Any]:
            # A generator function itself (mlflow's ResponsesAgent requires one), so the invoker
            # is read when the stream starts, at its first item, before anything is yielded.
            generator = function(*args, **kwargs)  # before entering: bad arguments must not leave a request open
            return (yield from _steps(*enter(), generator, strict))

        return stream  # type: ignore[return-value]

    if inspect.iscoroutinefunction(function):

        @functools.wraps(function)
        async def coroutine(*args: Any, **kwargs: Any) -> Any:
            context, owned = enter()
            reset = _enter(context, strict)
            try:
                return await function(*args, **kwargs)
            finally:
                _leave(reset)
                if owned:
                    context.end()

        return coroutine  # type: ignore[return-value]

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        if _current.get() is None:  # a top-level call: mlflow may be running it while logging the model
            answer = log_time.stand_in(function, args)
            if answer is not None:
                return answer
        context, owned = enter()
        reset = _enter(context, strict)
        try:
            return function(*args, **kwargs)
        finally:
            _leave(reset)
            if owned:
                context.end()

    return call  # type: ignore[return-value]
