"""Provider integrations: instrument an OpenAI or Anthropic client object.

Importing this package imports neither `openai` nor `anthropic`; clients are recognised
by their class names.

Example:
    >>> from openai import OpenAI  # doctest: +SKIP
    >>> from mv37.rollout.integrations import wrap  # doctest: +SKIP
    >>> client = wrap(OpenAI())  # doctest: +SKIP
    >>> client.chat.completions.create(model="gpt-4o-mini", messages=[...])  # doctest: +SKIP
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mv37.rollout.integrations._agents_bridge import (
        instrument_openai_agents,
        openai_agents_processor,
    )
    from mv37.rollout.integrations._errors import MissingExtraError, UnsupportedIntegrationError
    from mv37.rollout.integrations._toolset import wrap_tools
    from mv37.rollout.integrations._usage import usage_from_anthropic, usage_from_openai
    from mv37.rollout.integrations._wrap import wrap

# Each name is imported from its module on first use (PEP 562): importing one
# integration does not load the others.
_LAZY = {
    "MissingExtraError": "_errors",
    "UnsupportedIntegrationError": "_errors",
    "instrument_openai_agents": "_agents_bridge",
    "openai_agents_processor": "_agents_bridge",
    "usage_from_anthropic": "_usage",
    "usage_from_openai": "_usage",
    "wrap": "_wrap",
    "wrap_tools": "_toolset",
}


# Hidden from type checkers, so that they still flag a misspelt attribute.
if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        import importlib

        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "MissingExtraError",
    "UnsupportedIntegrationError",
    "instrument_openai_agents",
    "openai_agents_processor",
    "usage_from_anthropic",
    "usage_from_openai",
    "wrap",
    "wrap_tools",
]
