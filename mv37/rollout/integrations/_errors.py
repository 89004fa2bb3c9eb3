"""The two errors `wrap()` raises: an object it cannot instrument, a provider package missing."""

from __future__ import annotations


class UnsupportedIntegrationError(TypeError):
    """`wrap()` was given an object it does not know how to instrument.

    Example:
        >>> wrap(object())  # doctest: +SKIP
        UnsupportedIntegrationError: cannot wrap object: supported are openai.OpenAI, ...
    """


class MissingExtraError(ImportError):
    """The provider package an integration needs is not installed.

    Example:
        >>> wrap(gateway, provider="anthropic")  # doctest: +SKIP
        MissingExtraError: ... pip install 'mv37-rollout[anthropic]'
    """

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"the {package!r} package is not installed; install the extra: "
            f"pip install 'mv37-rollout[{extra}]'",
            name=package,
        )
        self.extra = extra
