"""mv37.rollout: trace AI agents with a small, friendly API on OpenTelemetry.

Example:
    >>> import mv37.rollout as rollout
    >>> rollout.init(agent_name="support_agent")  # doctest: +SKIP
    >>> @rollout.tool("get_weather")  # doctest: +SKIP
    ... def get_weather(city: str) -> dict: ...
"""

from typing import TYPE_CHECKING, Any

from mv37.rollout._global import (
    acheck,
    aflush,
    ashutdown,
    capture_event,
    check,
    feedback,
    flush,
    get_client,
    identify_user,
    init,
    shutdown,
    signal,
    stats,
    user,
)
from mv37.rollout._rollout import Rollout
from mv37.rollout.base._config import RolloutConfig, resolve_config
from mv37.rollout.base._types import EventAttributes, UsageDict, UserTraits
from mv37.rollout.base._version import __version__
from mv37.rollout.facade._api import ScopeFactory, agent, span, task, tool, trace
from mv37.rollout.facade._context import bind_context, current_span, current_trace
from mv37.rollout.facade._span import Span, ToolCall
from mv37.rollout.facade._trace import Trace
from mv37.rollout.facade._user import UserContext

if TYPE_CHECKING:
    from mv37.rollout.integrations._agents_bridge import (
        instrument_openai_agents,
        openai_agents_processor,
    )
    from mv37.rollout.integrations._errors import MissingExtraError, UnsupportedIntegrationError
    from mv37.rollout.integrations._toolset import wrap_tools
    from mv37.rollout.integrations._usage import usage_from_anthropic, usage_from_openai
    from mv37.rollout.integrations._wrap import wrap
    from mv37.rollout.pipeline._check import CheckResult
    from mv37.rollout.pipeline._stats import RolloutStats

# Loaded on first use (PEP 562), so that `import mv37.rollout` imports no integration
# (nor wrapt) until a program wraps a client or reads one of these names.
_LAZY = {
    "MissingExtraError": "mv37.rollout.integrations._errors",
    "UnsupportedIntegrationError": "mv37.rollout.integrations._errors",
    "instrument_openai_agents": "mv37.rollout.integrations._agents_bridge",
    "openai_agents_processor": "mv37.rollout.integrations._agents_bridge",
    "usage_from_anthropic": "mv37.rollout.integrations._usage",
    "usage_from_openai": "mv37.rollout.integrations._usage",
    "wrap": "mv37.rollout.integrations._wrap",
    "wrap_tools": "mv37.rollout.integrations._toolset",
    "CheckResult": "mv37.rollout.pipeline._check",
    "RolloutStats": "mv37.rollout.pipeline._stats",
}


# Hidden from type checkers, so that they still flag a misspelt attribute.
if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        import importlib

        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "CheckResult",
    "EventAttributes",
    "MissingExtraError",
    "Rollout",
    "RolloutConfig",
    "RolloutStats",
    "ScopeFactory",
    "Span",
    "ToolCall",
    "Trace",
    "UnsupportedIntegrationError",
    "UsageDict",
    "UserContext",
    "UserTraits",
    "__version__",
    "acheck",
    "aflush",
    "agent",
    "ashutdown",
    "bind_context",
    "capture_event",
    "check",
    "current_span",
    "current_trace",
    "feedback",
    "flush",
    "get_client",
    "identify_user",
    "init",
    "instrument_openai_agents",
    "openai_agents_processor",
    "resolve_config",
    "shutdown",
    "signal",
    "span",
    "stats",
    "task",
    "tool",
    "trace",
    "usage_from_anthropic",
    "usage_from_openai",
    "user",
    "wrap",
    "wrap_tools",
]
