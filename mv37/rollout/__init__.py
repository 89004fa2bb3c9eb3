"""mv37.rollout: trace AI agents with a small, friendly API on OpenTelemetry.

Example:
    >>> import mv37.rollout as rollout
    >>> rollout.init(agent_name="support_agent")  # doctest: +SKIP
    >>> @rollout.tool("get_weather")  # doctest: +SKIP
    ... def get_weather(city: str) -> dict: ...
"""

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
from mv37.rollout.integrations import (
    MissingExtraError,
    UnsupportedIntegrationError,
    instrument_openai_agents,
    openai_agents_processor,
    usage_from_anthropic,
    usage_from_openai,
    wrap,
    wrap_tools,
)
from mv37.rollout.pipeline._check import CheckResult
from mv37.rollout.pipeline._stats import RolloutStats

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
