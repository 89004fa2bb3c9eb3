"""`Rollout`: the public client, the facade's core plus the integrations.

`RolloutCore` (facade layer) does the tracing; this class adds what reaches up into
`integrations/`: `wrap`, `wrap_tools`, the OpenAI Agents bridge and `auto_instrument`.

Example:
    >>> client = Rollout(agent_name="support_agent", sync_mode=True)  # doctest: +SKIP
    >>> with client.trace("support_agent") as trace:  # doctest: +SKIP
    ...     trace.message(role="user", content="hi")
"""

from __future__ import annotations

from typing import Any, TypeVar

from mv37.rollout.facade._client import RolloutCore
from mv37.rollout.integrations._agents_bridge import (
    instrument_openai_agents,
    openai_agents_processor,
)
from mv37.rollout.integrations._auto import enable
from mv37.rollout.integrations._toolset import wrap_tools
from mv37.rollout.integrations._wrap import wrap

T = TypeVar("T")


class Rollout(RolloutCore):
    """The Rollout client: configuration, the OTel pipeline, trace factories, integrations.

    Arguments and their `ROLLOUT_*` environment variables are listed in `RolloutConfig`;
    an argument beats the variable, which beats the default.

    Example:
        >>> client = Rollout(agent_name="support_agent", sync_mode=True)  # doctest: +SKIP
        >>> with client.trace("support_agent") as trace:  # doctest: +SKIP
        ...     trace.message(role="user", content="hi")
    """

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        if self.config.auto_instrument and not self.config.disabled:
            enable(self.config.auto_instrument, self)

    def wrap(self, obj: T, *, provider: str | None = None, **options: Any) -> T:
        """Instrument one OpenAI/Anthropic client object with this client (see `rollout.wrap`).

        Example:
            >>> openai_client = client.wrap(OpenAI())  # doctest: +SKIP
        """
        return wrap(obj, provider=provider, client=self, **options)

    def wrap_tools(
        self,
        tools: T,
        *,
        record_input: bool = True,
        record_output: bool = True,
        implicit_trace: bool = False,
    ) -> T:
        """Instrument a mapping or iterable of tool callables (see `rollout.wrap_tools`)."""
        return wrap_tools(
            tools,
            record_input=record_input,
            record_output=record_output,
            implicit_trace=implicit_trace,
            client=self,
        )

    def instrument_openai_agents(self, *, replace: bool = False, **options: Any) -> Any:
        """Send the OpenAI Agents SDK's traces to this client (see the module function)."""
        return instrument_openai_agents(replace=replace, client=self, **options)

    def openai_agents_processor(self, **options: Any) -> Any:
        """An OpenAI Agents SDK tracing processor recording into this client."""
        return openai_agents_processor(client=self, **options)
