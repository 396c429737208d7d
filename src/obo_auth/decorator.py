"""``@on_behalf_of_user``: the serving edge of obo_auth.

On entry it reads the invoker's token once (invoker.py) and opens a RequestContext that
lasts until the function returns or, for a stream, until the generator is exhausted or
closed (a stream's entry is its first item: the wrapper must stay a generator function). For a stream the context is set around each step of the generator only, so it
never leaks into the code that consumes the stream.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar, overload

from obo_auth.context import RequestContext, _current
from obo_auth.invoker import read_invoker

F = TypeVar("F", bound=Callable[..., Any])


@overload
def on_behalf_of_user(function: F) -> F: ...
@overload
def on_behalf_of_user(*, strict: bool = False) -> Callable[[F], F]: ...


def on_behalf_of_user(function: F | None = None, *, strict: bool = False) -> F | Callable[[F], F]:
    """Run ``function`` (``predict``, ``predict_stream``, or any function or generator) as its invoker.

    ``strict=True`` makes every ``req.optional(...)`` fail loudly, as ``req.require(...)`` does.
    """
    if function is None:
        return lambda f: _wrap(f, strict)
    return _wrap(function, strict)


def _open(strict: bool) -> RequestContext:
    token, host = read_invoker()  # fails closed: NoInvokerError
    return RequestContext(token, host, strict=strict)


def _steps(context: RequestContext, generator: Iterator[Any]) -> Iterator[Any]:
    """Runs each step of ``generator`` inside ``context``; ends the context when the stream ends."""
    try:
        while True:
            reset = _current.set(context)
            try:
                item = next(generator)
            except StopIteration as stop:
                return stop.value
            finally:
                _current.reset(reset)
            yield item
    finally:
        reset = _current.set(context)
        try:
            generator.close()  # its own finally blocks still run as the user
        finally:
            _current.reset(reset)
            context.end()


def _wrap(function: F, strict: bool) -> F:
    wrapper = _wrapper(function, strict)
    # Lets local serving tell an obo_auth agent (safe to serve concurrently) from one that
    # reads the runtime's process-wide token slot itself (served one request at a time).
    wrapper.__obo_auth_on_behalf_of_user__ = True  # type: ignore[attr-defined]
    return wrapper


def _wrapper(function: F, strict: bool) -> F:
    if inspect.isasyncgenfunction(function):

        @functools.wraps(function)
        async def async_stream(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            context = _open(strict)
            generator = function(*args, **kwargs)
            try:
                while True:
                    reset = _current.set(context)
                    try:
                        item = await generator.__anext__()
                    except StopAsyncIteration:
                        return
                    finally:
                        _current.reset(reset)
                    yield item
            finally:
                reset = _current.set(context)
                try:
                    await generator.aclose()  # its own finally blocks still run as the user
                finally:
                    _current.reset(reset)
                    context.end()

        return async_stream  # type: ignore[return-value]

    if inspect.isgeneratorfunction(function):

        @functools.wraps(function)
        def stream(*args: Any, **kwargs: Any) -> Iterator[Any]:
            # A generator function itself (mlflow's ResponsesAgent requires one), so the invoker
            # is read when the stream starts, at its first item, before anything is yielded.
            return (yield from _steps(_open(strict), function(*args, **kwargs)))

        return stream  # type: ignore[return-value]

    if inspect.iscoroutinefunction(function):

        @functools.wraps(function)
        async def coroutine(*args: Any, **kwargs: Any) -> Any:
            context = _open(strict)
            reset = _current.set(context)
            try:
                return await function(*args, **kwargs)
            finally:
                _current.reset(reset)
                context.end()

        return coroutine  # type: ignore[return-value]

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        context = _open(strict)
        reset = _current.set(context)
        try:
            return function(*args, **kwargs)
        finally:
            _current.reset(reset)
            context.end()

    return call  # type: ignore[return-value]
