"""Step-wise jobs: generators that yield after every step and return their result.

The sampler, the engine's calls and the server's cancellable requests are all jobs. This module
is their one driver: `advance` takes one step, `run` runs a job to its end (seeing each step if
asked), `relay` passes a job's steps on in another form, and `blocking` turns a function that
makes a job into one that returns the job's result. It knows nothing about what a step is.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator
from typing import Literal, ParamSpec, TypeVar

P = ParamSpec("P")
S = TypeVar("S")  # what a job yields after each step
U = TypeVar("U")
T = TypeVar("T")  # what it returns

Steps = Generator[S, None, T]


def advance(job: Steps[S, T]) -> tuple[Literal[False], S] | tuple[Literal[True], T]:
    """Take one step: (False, what the step yielded) or (True, the job's result).

    StopIteration never escapes (it must not cross into a Future or another generator).
    """
    try:
        return False, next(job)
    except StopIteration as stop:
        return True, stop.value


def run(job: Steps[S, T], on_step: Callable[[S], object] | None = None) -> T:
    """Run a job to its end and return its result, calling `on_step` after every step."""
    while True:
        step = advance(job)
        if step[0]:
            return step[1]
        if on_step is not None:
            on_step(step[1])


def relay(job: Steps[S, T], change: Callable[[S], U]) -> Steps[U, T]:
    """Yield `change(step)` for every step of `job`; return its result."""
    while True:
        step = advance(job)
        if step[0]:
            return step[1]
        yield change(step[1])


def blocking(make: Callable[P, Steps[S, T]]) -> Callable[P, T]:
    """The same call as `make`, run to its end: returns the result instead of the job."""

    @functools.wraps(make)
    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        return run(make(*args, **kwargs))

    return call
