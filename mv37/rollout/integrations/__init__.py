"""Provider integrations: instrument an OpenAI or Anthropic client object.

Importing this package imports neither `openai` nor `anthropic`; clients are recognised
by their class names.

Example:
    >>> from openai import OpenAI  # doctest: +SKIP
    >>> from mv37.rollout.integrations import wrap  # doctest: +SKIP
    >>> client = wrap(OpenAI())  # doctest: +SKIP
    >>> client.chat.completions.create(model="gpt-4o-mini", messages=[...])  # doctest: +SKIP
"""

from mv37.rollout.integrations._agents_bridge import (
    instrument_openai_agents,
    openai_agents_processor,
)
from mv37.rollout.integrations._errors import MissingExtraError, UnsupportedIntegrationError
from mv37.rollout.integrations._toolset import wrap_tools
from mv37.rollout.integrations._usage import usage_from_anthropic, usage_from_openai
from mv37.rollout.integrations._wrap import wrap

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
