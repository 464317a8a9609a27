"""Filling an evaluation's pending cells: chat completions through each column's connection, a
bounded number in flight per connection, each answer written as soon as it arrives.

Threads only do HTTP; every database write happens on the calling thread, one short
statement per cell (no transaction is open while a request is in flight). A cell is written
with ``UPDATE … WHERE status = 'pending'``, so a cell answered by a duplicate run is never
written twice, and a restarted run only asks for cells that still have no answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings

from datasets.validation.jsontext import storable_text
from jobs.connections import provider_for_connection
from jobs.models import ProviderConnection
from jobs.providers import Provider
from jobs.providers.errors import ProviderError, TransientProviderError
from jobs.providers.records import ChatResult


@dataclass(frozen=True)
class Call:
    """One chat completion to make: ``key`` identifies the cell it answers."""

    key: Any
    connection_id: int
    model: str
    messages: list[dict[str, Any]]
    temperature: float | None
    max_tokens: int | None
    seed: int | None


@dataclass(frozen=True)
class Answer:
    call: Call
    result: ChatResult | None
    error: ProviderError | None

    @property
    def transient(self) -> bool:
        return isinstance(self.error, TransientProviderError)


def _ask(provider: Provider, call: Call) -> Answer:
    try:
        result = provider.chat_completion(
            model=call.model,
            messages=call.messages,
            temperature=call.temperature,
            max_tokens=call.max_tokens,
            seed=call.seed,
        )
    except ProviderError as exc:
        return Answer(call, None, exc)
    if result.content is not None:
        # JSON may escape a lone surrogate or NUL: neither can be stored, graded or shown.
        result = replace(result, content=storable_text(result.content))
    return Answer(call, result, None)


def run_calls(
    calls: Iterable[Call],
    *,
    on_answer: Callable[[Answer], None],
    should_stop: Callable[[], bool],
    deadline: float | None = None,
    concurrency: int | None = None,
    interactive: bool = False,
) -> bool:
    """Make the calls, at most ``concurrency`` at a time per connection, and hand each answer
    to ``on_answer`` (on this thread). Stops submitting when ``should_stop()`` says so or the
    monotonic ``deadline`` passes, then lets the calls in flight finish. True when every call
    was made. ``interactive``: a page is waiting, so each call gets the short timeouts of
    ``jobs.connections.interactive_timeouts`` and no retry."""
    limit = concurrency or settings.EVAL_CONCURRENCY_PER_CONNECTION
    queues: dict[int, list[Call]] = {}
    for call in calls:
        queues.setdefault(call.connection_id, []).append(call)
    if not queues:
        return True
    connections = ProviderConnection.objects.in_bulk(list(queues))
    providers = {
        pk: provider_for_connection(connections[pk], interactive=interactive) for pk in queues
    }
    in_flight: dict[Future[Answer], int] = {}
    per_connection = dict.fromkeys(queues, 0)
    stopped = False
    with ThreadPoolExecutor(max_workers=limit * len(queues)) as pool:

        def fill() -> None:
            for pk, queue in queues.items():
                while queue and per_connection[pk] < limit:
                    future = pool.submit(_ask, providers[pk], queue.pop(0))
                    in_flight[future] = pk
                    per_connection[pk] += 1

        fill()
        while in_flight:
            done, _ = wait(in_flight, timeout=1.0, return_when=FIRST_COMPLETED)
            for future in done:
                per_connection[in_flight.pop(future)] -= 1
                on_answer(future.result())
            if not stopped and (
                should_stop() or (deadline is not None and time.monotonic() > deadline)
            ):
                stopped = True
                for queue in queues.values():
                    queue.clear()
            if not stopped:
                fill()
    return not stopped
