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


ADOPTED_PREFIXES: Final = (
    "anthropic.",
    "http.",
    "url.",
    "server.",
    sc.GEN_AI_REQUEST_MODEL.rpartition(".")[0] + ".",  # gen_ai.request.*
    sc.GEN_AI_RESPONSE_MODEL.rpartition(".")[0] + ".",  # gen_ai.response.*
    sc.GEN_AI_USAGE_INPUT_TOKENS.rpartition(".")[0] + ".",  # gen_ai.usage.*
)
"""What a provider SDK's own span may add to ours when ours stands in for it (`wrap()`
with `dedupe_llm_spans`): its request ids, HTTP facts, request/response details and
extra usage counts, for the keys ours lacks. Never content (messages, prompts,
instructions), which ours captures under its own settings."""


def adoptable(attributes: Mapping[str, Any], present: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes a provider SDK recorded that our span may take: under
    `ADOPTED_PREFIXES`, and not already on ours (`present`)."""
    return {
        key: value
        for key, value in attributes.items()
        if key not in present and key.startswith(ADOPTED_PREFIXES)
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
