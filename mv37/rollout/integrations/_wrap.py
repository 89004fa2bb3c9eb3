"""`wrap()`: instrument one provider client object, and only that object.

The client is recognised by the module and name of its class (or a base class), so
nothing here imports `openai` or `anthropic`. Instrumenting replaces the bound methods
on that client's own resource objects (`client.chat.completions.create`, ...) with
`wrapt` wrappers: no class, module or other client is touched, and a second `wrap()`
of the same object changes nothing.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import sys
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any, Final, NamedTuple, TypeVar
from urllib.parse import urlsplit

import wrapt

from mv37.rollout.base._diagnostics import internal_error
from mv37.rollout.integrations._call import (
    AZURE_OPENAI,
    Adapter,
    Binding,
    manager_wrapper,
    method_wrapper,
)
from mv37.rollout.integrations._dedupe import hook_client
from mv37.rollout.integrations._errors import MissingExtraError, UnsupportedIntegrationError
from mv37.rollout.vocabulary._fields import attributes_option

if TYPE_CHECKING:
    from mv37.rollout.facade._client import RolloutCore

T = TypeVar("T")
WrapperFn = Callable[[Binding, Adapter], Callable[..., Any]]

_MARK: Final = "_mv37_rollout_wrapped"
# (top-level package, class name) -> (integration, gen_ai.provider.name)
_CLIENTS: Final = {
    ("openai", "OpenAI"): ("openai", "openai"),
    ("openai", "AsyncOpenAI"): ("openai", "openai"),
    ("openai", "AzureOpenAI"): ("openai", AZURE_OPENAI),
    ("openai", "AsyncAzureOpenAI"): ("openai", AZURE_OPENAI),
    ("anthropic", "Anthropic"): ("anthropic", "anthropic"),
    ("anthropic", "AsyncAnthropic"): ("anthropic", "anthropic"),
}
_SUPPORTED_NAMES: Final = ", ".join(f"{pkg}.{name}" for pkg, name in _CLIENTS)
_PROVIDERS: Final = ("openai", "anthropic")


class Operation(NamedTuple):
    """One instrumented method: where it lives on the client and how to read it."""

    path: tuple[str, ...]
    name: str
    adapter: Adapter
    wrapper: WrapperFn


@cache
def _operations(integration: str) -> tuple[Operation, ...]:
    if integration == "openai":
        from mv37.rollout.integrations._openai import ChatCompletions, Responses

        return (
            Operation(("chat", "completions"), "create", ChatCompletions(), method_wrapper),
            Operation(("responses",), "create", Responses(), method_wrapper),
        )
    from mv37.rollout.integrations._anthropic import Messages

    return (
        Operation(("messages",), "create", Messages("messages.create"), method_wrapper),
        Operation(
            ("messages",), "stream", Messages("messages.stream", stream=True), manager_wrapper
        ),
    )


class RolloutMethod(wrapt.FunctionWrapper[..., Any]):
    """A provider method instrumented by `wrap()` (keeps name, signature, async-ness)."""


def detect(obj: object) -> tuple[str, str] | None:
    """`(integration, provider name)` for a supported client instance, else `None`."""
    for cls in type(obj).__mro__:
        found = _CLIENTS.get((cls.__module__.partition(".")[0], cls.__name__))
        if found is not None:
            return found
    return None


def _require(package: str) -> None:
    """Raise `MissingExtraError` when `package` cannot be imported (without importing it)."""
    if sys.modules.get(package) is not None:
        return
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise MissingExtraError(package, package)


@cache
def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except Exception:
        return None


def _server(obj: object) -> tuple[str, int] | None:
    """(host, port) of a client object's `base_url`, for `server.address`/`.port`."""
    try:
        parts = urlsplit(str(getattr(obj, "base_url", "") or ""))
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    except Exception:
        return None
    if not parts.hostname or port is None:
        return None
    return parts.hostname, port


def _type_name(obj: object) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def wrap(
    obj: T,
    *,
    provider: str | None = None,
    client: RolloutCore | None = None,
    **options: Any,
) -> T:
    """Instrument one provider client object; every call becomes an `llm` span.

    Supported: `openai.OpenAI`, `AsyncOpenAI`, `AzureOpenAI`, `AsyncAzureOpenAI`
    (`chat.completions.create`, `responses.create`) and `anthropic.Anthropic`,
    `AsyncAnthropic` (`messages.create`, `messages.stream`), sync and async, streamed
    or not. Results and streams behave exactly as before. Inside a Rollout trace the
    span is its child; otherwise each call gets a one-call trace.

    Args:
        obj: The client instance. Only this object is changed; it is returned.
        provider: `"openai"` or `"anthropic"` to force an integration, for
            OpenAI/Anthropic-compatible gateway clients of another type.
        client: The `Rollout` client to record with (default: the global client, looked
            up at call time, so wrapping before `init()` works).
        **options: `attributes={...}`: user attributes on every span.

    Raises:
        UnsupportedIntegrationError: `obj` is not a supported client (names the type).
        MissingExtraError: The provider package of the integration is not installed.

    Example:
        >>> client = rollout.wrap(OpenAI())  # doctest: +SKIP
        >>> client.chat.completions.create(model="gpt-4o-mini", messages=[...])  # doctest: +SKIP
    """
    attributes = attributes_option("wrap", options)
    found = detect(obj)
    if provider is None:
        if found is None:
            raise UnsupportedIntegrationError(
                f"cannot wrap {_type_name(obj)}: supported are {_SUPPORTED_NAMES} instances "
                "(or pass provider='openai' / provider='anthropic' for a compatible client)"
            )
        integration, provider_name = found
    elif provider in _PROVIDERS:
        integration = provider
        provider_name = found[1] if found is not None and found[0] == provider else provider
    else:
        raise ValueError(f"wrap(provider={provider!r}): expected one of {', '.join(_PROVIDERS)}")
    _require(integration)
    if getattr(obj, _MARK, None) is not None:
        return obj
    binding = Binding(
        integration=integration,
        provider=provider_name,
        version=_version(integration),
        client=client,
        attributes=dict(attributes) if attributes else None,
        server=_server(obj),
    )
    if not _instrument(obj, binding):
        raise UnsupportedIntegrationError(
            f"cannot wrap {_type_name(obj)} as {integration}: it has none of "
            + ", ".join(".".join((*op.path, op.name)) for op in _operations(integration))
        )
    hook_client(obj)
    if found is not None:
        _follow_copies(obj, binding)
    # On an object that takes no attributes, the per-method check keeps wrap() idempotent.
    with contextlib.suppress(Exception):
        setattr(obj, _MARK, binding)
    return obj


def _instrument(obj: object, binding: Binding) -> int:
    """Wrap each operation's method on `obj`; how many it has (wrapped now or before)."""
    found = 0
    for op in _operations(binding.integration):
        resource: Any = obj
        for part in op.path:
            resource = getattr(resource, part, None)
            if resource is None:
                break
        method = getattr(resource, op.name, None) if resource is not None else None
        if method is None or not callable(method):
            continue
        found += 1
        if not isinstance(method, RolloutMethod):
            setattr(resource, op.name, RolloutMethod(method, op.wrapper(binding, op.adapter)))
    return found


def _follow_copies(obj: object, binding: Binding) -> None:
    """`client.with_options(...)` / `client.copy(...)` of a wrapped client are wrapped too."""

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        new = wrapped(*args, **kwargs)
        try:
            if detect(new) is not None and getattr(new, _MARK, None) is None:
                _instrument(new, binding)
                hook_client(new)
                _follow_copies(new, binding)
                setattr(new, _MARK, binding)
        except Exception as exc:
            internal_error(f"{binding.integration}: wrap client copy", exc)
        return new

    for name in ("with_options", "copy"):
        method = getattr(obj, name, None)
        if callable(method) and not isinstance(method, RolloutMethod):
            setattr(obj, name, RolloutMethod(method, wrapper))
