"""LLM spans of other instrumentations: how to tell one, and the usage it carries.

OpenInference marks a model call with `openinference.span.kind` = `LLM`; OTel GenAI
instrumentations (OpenLLMetry, the contrib packages, Anthropic's own SDK spans) with
`gen_ai.operation.name` = `chat`, `text_completion` or `generate_content`. Their usage is
read from the GenAI keys (`gen_ai.usage.*`), else OpenInference's
(`llm.token_count.*`): a span carrying both counts once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from mv37.rollout import semconv as sc
from mv37.rollout.vocabulary._attributes import SUMMED_USAGE_FIELDS, USAGE_KEYS, clean_usage

LLM_KIND: Final = "LLM"
"""The `openinference.span.kind` of a model call."""
LLM_OPERATIONS: Final = frozenset({"chat", "text_completion", "generate_content"})
"""The `gen_ai.operation.name` values of a model call (OTel GenAI conventions)."""


ADOPTED_KEYS: Final = frozenset(
    {sc.ANTHROPIC_REQUEST_ID, sc.HTTP_RESPONSE_STATUS_CODE, sc.SERVER_ADDRESS, sc.SERVER_PORT}
)
"""What a provider SDK's own span may add to ours when ours stands in for it (`wrap()`
with `dedupe_llm_spans`), where ours lacks it: the provider's request id (what its
support asks for), the HTTP status, the server. Registered keys only; never content."""


def adoptable(attributes: Mapping[str, Any], present: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes a provider SDK recorded that our span may take: in `ADOPTED_KEYS`,
    and not already on ours (`present`)."""
    return {
        key: value
        for key, value in attributes.items()
        if key in ADOPTED_KEYS and key not in present
    }


def is_llm_span(attributes: Mapping[str, Any]) -> bool:
    """Whether a span's attributes say it is one model call."""
    return (
        attributes.get(sc.OPENINFERENCE_SPAN_KIND) == LLM_KIND
        or attributes.get(sc.GEN_AI_OPERATION_NAME) in LLM_OPERATIONS
    )


def foreign_usage(attributes: Mapping[str, Any]) -> dict[str, int | float]:
    """The summed usage fields on a span, each from its first mirror key present."""
    found: dict[str, Any] = {}
    for name in SUMMED_USAGE_FIELDS:
        for key in USAGE_KEYS[name][1:]:  # the mirrors, GenAI first; not rollout.*
            value = attributes.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                found[name] = value
                break
    return clean_usage(found) if found else {}
