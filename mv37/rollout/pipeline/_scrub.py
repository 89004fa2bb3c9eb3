"""Default scrubbing: secrets and credentials never leave the process.

Runs on every span we export (ours and foreign ones), in the export thread, before the
user's `scrubber` and `before_send`:

- an attribute whose key looks like a secret (`password`, `api_key`, `token`,
  `authorization`, `cookie`, ...) gets the value `[REDACTED]`; our own registered keys
  (`gen_ai.usage.input_tokens`, ...) are known and never match;
- JSON text (our payloads) has the values under secret-looking keys replaced, at any
  depth;
- values that look like credentials (`sk-...`, `Bearer ...`, AWS access keys, JWTs,
  GitHub/Slack/Google tokens, PEM private keys) are masked wherever they appear in a
  string (card numbers are masked by key: `card_number`, `credit_card`, `cvv`, ...);
- with `send_default_pii=False`, user and account traits lose email, phone, name,
  address and IP values.

Each redaction counts; a span with any carries `rollout.scrub.count`.

Cheap by design: credential patterns start with a literal, which the regex engine
finds with a fast substring search, and a pattern runs only when the text holds every
character its matches must contain (one `memchr` each); secret JSON keys are looked for
with a few literal triggers in the lower-cased text (4 regex scans), and on a hit a
document is walked only when one of its key names is secret.

Example:
    >>> Redactor().text('{"user": "ann", "password": "hunter2"}')
    ('{"user": "ann", "password": "[REDACTED]"}', 1)
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from mv37.rollout import semconv as sc

REDACTED: Final = "[REDACTED]"

SECRET_WORDS: Final = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "secret",
        "token",
        "auth",
        "authorization",
        "credential",
        "credentials",
        "cookie",
        "cookies",
        "ssn",
        "apikey",
        "privatekey",
        "cvv",
        "cvc",
    }
)
"""A key containing one of these words (split on `_ - . ` and camelCase) is secret."""

SECRET_PHRASES: Final = (
    "api_key",
    "private_key",
    "secret_key",
    "access_key",
    "session_token",
    "card_number",
    "credit_card",
    "cc_number",
    "set_cookie",
)
"""A key whose words contain one of these `word_word` phrases is secret."""

PII_WORDS: Final = frozenset(
    {
        "email",
        "mail",
        "phone",
        "mobile",
        "name",
        "firstname",
        "lastname",
        "fullname",
        "address",
        "street",
        "ip",
        "ipaddress",
        "birthday",
        "dob",
    }
)
"""Trait keys masked when `send_default_pii=False`."""

_CREDENTIALS: Final = (
    # (trigger looked up in the lower-cased text, or None: the pattern starts with a
    # literal, which the regex engine finds as fast as `in`;
    #  characters every match contains, rarest first: when one is missing from the text
    #  the pattern cannot match, and `char in text` is a memchr, ~40x cheaper than a pass;
    #  the pattern)
    (None, "-ks", r"sk-[A-Za-z0-9][A-Za-z0-9_\-]{15,}"),
    ("bearer", "", r"(?i:(?<=bearer ))[A-Za-z0-9._~+/=\-]{8,}"),
    (None, "KIA", r"AKIA[0-9A-Z]{16}"),
    (None, "SIA", r"ASIA[0-9A-Z]{16}"),
    (None, "J.ye", r"eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
    (None, "_gh", r"gh[pousr]_[A-Za-z0-9]{30,}"),
    (None, "_bgh", r"github_pat_[A-Za-z0-9_]{40,}"),
    (None, "x-o", r"xox[abprs]-[A-Za-z0-9\-]{10,}"),
    (None, "IAz", r"AIza[0-9A-Za-z_\-]{35}"),
    (
        None,
        "BGKN-",
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
    ),
)
_KEY_TRIGGERS: Final = (
    # One of these in the lower-cased text sends it to the JSON key check (long texts
    # search them with `_KEY_TRIGGER_SEARCHES`). Likeliest first: LLM payloads nearly
    # always hold a `..._tokens` key.
    "token",
    "auth",
    "api",
    "access",
    "pass",
    "pwd",
    "private",
    "secret",
    "ssn",
    "cred",
    "cookie",
    "card",
    "cvv",
    "cvc",
    "cc_n",  # cc_number (a secret phrase with no other trigger), ccNumber, cc-number
    "ccn",
    "cc-n",
)
_KEY_TRIGGER_SEARCHES: Final = (
    # `_KEY_TRIGGERS` in 4 regexes, the fewest: each starts with one literal character
    # (a tight scan), the part of a trigger before it is a lookbehind, checked only
    # after the characters that follow it matched. Likeliest first.
    r"t(?:oken|h(?<=auth))",
    r"p(?:ass|wd|rivate|i(?<=api))",
    r"c(?:red|ookie|ard|v[vc]|cess(?<=access)|ret(?<=secret)|c[_\-]?n)",
    r"s(?:sn)",
)
_WORDS: Final = re.compile(r"[a-z0-9]+")
_CAMEL: Final = re.compile(r"([a-z0-9])([A-Z])")
_JSON_SCALAR: Final = r'("(?:[^"\\]|\\.)*"|-?[0-9][0-9.eE+\-]*|true|false|null)'
_EMAIL: Final = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
_TRAIT_KEYS: Final = frozenset({sc.ROLLOUT_USER_TRAITS, sc.ROLLOUT_ACCOUNT_TRAITS})

SAFE_KEYS: Final = frozenset(
    {
        # types, kinds and names the SDK writes (the span's own name is never scrubbed)
        sc.ROLLOUT_SPAN_TYPE,
        sc.ROLLOUT_SPAN_NAME,
        sc.GEN_AI_OPERATION_NAME,
        sc.OPENINFERENCE_SPAN_KIND,
        sc.ROLLOUT_TOOL_NAME,
        sc.GEN_AI_TOOL_NAME,
        sc.TOOL_NAME,
        sc.ROLLOUT_TOOL_STATUS,
        sc.ROLLOUT_AGENT_NAME,
        sc.GEN_AI_AGENT_NAME,
        sc.AGENT_NAME,
        sc.GEN_AI_WORKFLOW_NAME,
        sc.ROLLOUT_INTEGRATION_NAME,
        sc.ROLLOUT_INTEGRATION_VERSION,
        sc.ROLLOUT_INTEGRATION_METHOD,
        sc.ROLLOUT_MESSAGE_ROLE,
        sc.ROLLOUT_MESSAGE_CONTENT_TYPE,
        sc.ROLLOUT_EVENT_TYPE,
        # mime types, truncation flags and lengths of our payloads
        sc.ROLLOUT_INPUT_MIME_TYPE,
        sc.ROLLOUT_OUTPUT_MIME_TYPE,
        sc.INPUT_MIME_TYPE,
        sc.OUTPUT_MIME_TYPE,
        sc.ROLLOUT_INPUT_TRUNCATED,
        sc.ROLLOUT_OUTPUT_TRUNCATED,
        sc.ROLLOUT_INPUT_ORIGINAL_LENGTH,
        sc.ROLLOUT_OUTPUT_ORIGINAL_LENGTH,
        sc.ROLLOUT_SCRUB_COUNT,
        # ids generated by us or a provider (not the user's context ids)
        sc.ROLLOUT_TOOL_CALL_ID,
        sc.GEN_AI_TOOL_CALL_ID,
        sc.TOOL_ID,
        sc.ROLLOUT_EVENT_ID,
        sc.ROLLOUT_LLM_RESPONSE_ID,
        sc.GEN_AI_RESPONSE_ID,
        # models, providers, flags, finish reasons
        sc.ROLLOUT_LLM_MODEL,
        sc.ROLLOUT_LLM_PROVIDER,
        sc.ROLLOUT_LLM_MODEL_VERSION,
        sc.ROLLOUT_LLM_REASONING_MODE,
        sc.ROLLOUT_LLM_STREAM,
        sc.ROLLOUT_LLM_STREAM_END_REASON,
        sc.ROLLOUT_LLM_FINISH_REASONS,
        sc.GEN_AI_PROVIDER_NAME,
        sc.GEN_AI_REQUEST_MODEL,
        sc.GEN_AI_RESPONSE_MODEL,
        sc.GEN_AI_REQUEST_STREAM,
        sc.GEN_AI_RESPONSE_FINISH_REASONS,
        sc.LLM_MODEL_NAME,
        sc.LLM_RESPONSE_MODEL_NAME,
        sc.LLM_PROVIDER,
        sc.ROLLOUT_GUARDRAIL_TRIGGERED,
        sc.ROLLOUT_MESSAGE_IS_INTERNAL,
        # counts, numbers and indexes
        sc.ROLLOUT_TOOL_RETRY_COUNT,
        sc.ROLLOUT_MESSAGE_INDEX,
        sc.ROLLOUT_LLM_TEMPERATURE,
        sc.ROLLOUT_LLM_STREAM_CHUNK_COUNT,
        sc.ROLLOUT_LLM_TIME_TO_FIRST_CHUNK,
        sc.ROLLOUT_LLM_CHUNK_INDEX,
        sc.ROLLOUT_USAGE_INPUT_TOKENS,
        sc.ROLLOUT_USAGE_OUTPUT_TOKENS,
        sc.ROLLOUT_USAGE_CACHED_TOKENS,
        sc.ROLLOUT_USAGE_REASONING_TOKENS,
        sc.ROLLOUT_USAGE_TOTAL_TOKENS,
        sc.ROLLOUT_USAGE_CACHE_CREATION_TOKENS,
        sc.ROLLOUT_USAGE_COST_USD,
        sc.ROLLOUT_CONTEXT_WINDOW_TOKENS,
        sc.ROLLOUT_CONTEXT_USED_TOKENS,
        sc.ROLLOUT_CONTEXT_UTILIZATION,
        sc.GEN_AI_REQUEST_TEMPERATURE,
        sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
        sc.GEN_AI_USAGE_INPUT_TOKENS,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS,
        sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
        sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
        sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
        sc.GEN_AI_REQUEST_MAX_TOKENS,
        sc.GEN_AI_REQUEST_TOP_P,
        sc.GEN_AI_REQUEST_TOP_K,
        sc.GEN_AI_REQUEST_FREQUENCY_PENALTY,
        sc.GEN_AI_REQUEST_PRESENCE_PENALTY,
        sc.GEN_AI_REQUEST_SEED,
        sc.GEN_AI_REQUEST_CHOICE_COUNT,
        sc.LLM_TOKEN_COUNT_PROMPT,
        sc.LLM_TOKEN_COUNT_COMPLETION,
        sc.LLM_TOKEN_COUNT_TOTAL,
        sc.LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_READ,
        sc.LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_WRITE,
        sc.LLM_TOKEN_COUNT_COMPLETION_DETAILS_REASONING,
        sc.LLM_COST_TOTAL,
    }
)
"""Keys we write with known-safe values (types, names, kinds, ids we or a provider made,
counts, models, flags): default scrubbing skips them. Payloads, messages, errors, the
user's context (user, session, conversation, account ids, traits) and anything under
`rollout.attributes.*` are never in it. With the user's own `scrub_patterns` these keys
are scanned like any other (the user's pattern may target them)."""
_MAX_CACHE: Final = 4096
_MIN_SECRET: Final = 15  # "Bearer " + 8 characters, the shortest built-in credential
_SHORT_TEXT: Final = 512
_CLEAN_CACHE_CHARS: Final = 256  # span names, types, ids, models repeat across spans


def key_words(key: str) -> list[str]:
    """The lower-case words of a key: `X-Api-Key` -> ['x', 'api', 'key']."""
    return _WORDS.findall(_CAMEL.sub(r"\1_\2", key).lower())


def first_letter_searches(words: Iterable[str]) -> tuple[re.Pattern[str], ...]:
    """One regex per first character, e.g. `c(?:ard|ookie|vv)`, that together find exactly
    the texts containing one of `words` (extra key words; the built-in triggers are
    grouped by hand in `_KEY_TRIGGER_SEARCHES`).

    A regex that starts with a literal character is searched with a tight scan for that
    character; `word in text` is a skip loop bound by memory latency, and one alternation
    of all words tests a character class at every position. For the 14 built-in triggers
    in 2 kB this was 5 scans of ~1 us instead of 14 `in` of ~1.2 us.
    """
    groups: dict[str, list[str]] = {}  # in the order of `words`
    for word in dict.fromkeys(words):
        groups.setdefault(word[:1], []).append(word[1:])
    return tuple(
        re.compile(re.escape(first) + "(?:" + "|".join(re.escape(r) for r in rests) + ")")
        for first, rests in groups.items()
        if first  # key_words never yields an empty word
    )


class Redactor:
    """Finds and masks secrets in keys, strings and JSON text.

    Args:
        enabled: Default rules on (the built-in words and credential patterns).
        extra_keys: More secret key words (matched like `SECRET_WORDS`).
        extra_patterns: More regular expressions; any match in a string is masked.
        allow_keys: Keys (exact, case-insensitive) never redacted by key.
        send_default_pii: Keep user/account trait values (email, phone, name, IP, ...).
    """

    def __init__(
        self,
        *,
        enabled: bool = True,
        extra_keys: Iterable[str] = (),
        extra_patterns: Iterable[str] = (),
        allow_keys: Iterable[str] = (),
        send_default_pii: bool = False,
    ) -> None:
        self.enabled = enabled
        self.send_default_pii = send_default_pii
        self._words = (SECRET_WORDS if enabled else frozenset()) | {
            w for key in extra_keys for w in key_words(key)
        }
        self._phrases = SECRET_PHRASES if enabled else ()
        self._extra_phrases = tuple(
            "_".join(key_words(key)) for key in extra_keys if len(key_words(key)) > 1
        )
        self._allow = frozenset(key.lower() for key in allow_keys)
        self._credentials = (
            tuple(
                # a literal regex scans for its first letter, faster than `in` (~0.7 us
                # instead of ~1 us on 2 kB) and with the same answer
                (re.compile(re.escape(trigger)).search if trigger else None, needs, re.compile(p))
                for trigger, needs, p in _CREDENTIALS
            )
            if enabled
            else ()
        )
        self._extra = tuple(re.compile(pattern) for pattern in extra_patterns)
        # Short strings: one combined search says whether any pattern could apply at all
        # (cheaper than a pass per pattern below ~0.5 kB; longer ones use the passes).
        everything = [p.pattern for *_, p in self._credentials] + [p.pattern for p in self._extra]
        self._any_credential = re.compile("|".join(everything)) if everything else None
        self._key_triggers = (_KEY_TRIGGERS if enabled else ()) + tuple(
            w for w in self._words - SECRET_WORDS
        )
        self._any_key = (
            re.compile("|".join(re.escape(t) for t in self._key_triggers))
            if self._key_triggers
            else None
        )
        # Long strings: 4 scans for the built-in triggers (5 if grouped by first letter).
        builtin = _KEY_TRIGGER_SEARCHES if enabled else ()
        extra = first_letter_searches(set(self._key_triggers) - set(_KEY_TRIGGERS))
        self._key_searches = tuple(re.compile(p).search for p in builtin) + tuple(
            p.search for p in extra
        )
        self._cache: dict[str, bool] = {}
        self._clean: dict[str, None] = {}  # short strings already found clean
        # A user pattern may target what we write (a customer code in a tool name, say).
        self._safe: frozenset[str] = frozenset() if self._extra else SAFE_KEYS

    @property
    def active(self) -> bool:
        """Whether anything can be redacted at all."""
        return bool(self._words or self._credentials or self._extra or not self.send_default_pii)

    # -- keys --------------------------------------------------------------------------

    def secret_key(self, key: str) -> bool:
        """True when `key` looks like it holds a secret (cached)."""
        known = self._cache.get(key)
        if known is not None:
            return known
        result = self._is_secret(key)
        if len(self._cache) >= _MAX_CACHE:
            self._cache.clear()
        self._cache[key] = result
        return result

    def _is_secret(self, key: str) -> bool:
        if key.lower() in self._allow:
            return False
        if sc.is_registered_attribute(key):
            user_prefix = sc.ROLLOUT_ATTRIBUTES + "."
            if not key.startswith(user_prefix):
                return False
            key = key[len(user_prefix) :]  # a user's own key under ours
        words = key_words(key)
        if any(word in self._words for word in words):
            return True
        joined = "_" + "_".join(words) + "_"
        return any(f"_{phrase}_" in joined for phrase in (*self._phrases, *self._extra_phrases))

    # -- strings -----------------------------------------------------------------------

    def text(self, text: str) -> tuple[str, int]:
        """`text` with credentials and secret JSON values masked, and how many."""
        size = len(text)
        if size < _MIN_SECRET and not self._extra:
            return text, 0  # too short for any built-in credential or a JSON key/value pair
        if size <= _CLEAN_CACHE_CHARS:
            if text in self._clean:
                return text, 0
            result = self._text(text)
            if not result[1]:
                if len(self._clean) >= _MAX_CACHE:
                    self._clean.clear()
                self._clean[text] = None
            return result
        return self._text(text)

    def _text(self, text: str) -> tuple[str, int]:
        count = 0
        lower = text.lower()
        # Secret keys first: a value they mask whole is not counted again below.
        short = len(text) <= _SHORT_TEXT
        if (
            self._any_key is not None
            and ('":' in text or '" :' in text)
            and (self._any_key.search(lower) is not None if short else self._has_key_trigger(lower))
        ):
            text, count = self._json_keys(text)
            if count:
                lower = text.lower()
        if short and (self._any_credential is None or self._any_credential.search(text) is None):
            return text, count
        for trigger, needs, pattern in self._credentials:
            if trigger is not None and trigger(lower) is None:
                continue
            for char in needs:  # checked on the current text, after earlier masks
                if char not in text:
                    break  # a character every match contains is missing: no match
            else:
                text, n = pattern.subn(REDACTED, text)
                count += n
        for pattern in self._extra:
            text, n = pattern.subn(REDACTED, text)
            count += n
        return text, count

    def _has_key_trigger(self, lower: str) -> bool:
        """Whether a key trigger occurs in `lower` (same answer as `in` per trigger)."""
        return any(search(lower) is not None for search in self._key_searches)

    def _json_keys(self, text: str) -> tuple[str, int]:
        # A document that starts with `{` or `[` ends with `}` or `]` (JSON whitespace is
        # a subset of what `strip` removes): a truncated payload skips a parse that fails.
        if text.lstrip()[:1] in ("{", "[") and text.rstrip()[-1:] in ("}", "]"):
            pairs: list[tuple[str, Any]] = []
            try:
                # Every object's pairs, without building the tree: values are masked
                # only under a secret key, so a document without one comes back as is
                # (2 kB of records: ~22 us, parse + walk took ~48). With one, it is
                # parsed again and masked in place.
                json.loads(text, object_pairs_hook=pairs.extend)
            except ValueError:
                pass
            else:
                if not any(self.secret_key(key) for key in dict(pairs)):
                    return text, 0
                tree = json.loads(text)
                count = self._mask(tree)
                if count:
                    return json.dumps(tree, ensure_ascii=False), count
                return text, 0
        return self._json_keys_by_pattern(text)

    def _mask(self, tree: Any) -> int:
        """Mask values under secret keys in a tree `json.loads` just built, in place.

        Nothing else holds the tree and a parse shares no containers, so nothing is
        copied; the order of the visits does not matter, each key is judged on its own.
        Returns how many values were masked.
        """
        cache = self._cache
        count = 0
        stack = [tree]
        while stack:
            node = stack.pop()
            if node.__class__ is dict:
                for key, value in node.items():
                    secret = cache.get(key)
                    if secret is None:
                        secret = self.secret_key(key)  # JSON keys are str
                    if secret and value not in (None, "", REDACTED):
                        node[key] = REDACTED  # an existing key: the size does not change
                        count += 1
                    elif value.__class__ is dict or value.__class__ is list:
                        stack.append(value)
            else:  # a list
                for item in node:
                    if item.__class__ is dict or item.__class__ is list:
                        stack.append(item)
        return count

    def _json_keys_by_pattern(self, text: str) -> tuple[str, int]:
        """Truncated or embedded JSON: mask scalar values after secret keys."""
        count = 0

        def sub(match: re.Match[str]) -> str:
            nonlocal count
            if not self.secret_key(match.group(1)):
                return match.group(0)
            count += 1
            return f'{match.group(0)[: match.start(2) - match.start(0)]}"{REDACTED}"'

        result = re.sub(r'"([^"\\]{1,100})"\s*:\s*' + _JSON_SCALAR, sub, text)
        return result, count

    # -- traits (PII) --------------------------------------------------------------------

    def traits_text(self, text: str) -> tuple[str, int]:
        """JSON traits with PII values (email, phone, name, IP, ...) masked."""
        try:
            tree = json.loads(text)
        except ValueError:
            return _EMAIL.subn(REDACTED, text)
        if not isinstance(tree, dict):
            return text, 0
        count = 0
        for key, value in list(tree.items()):
            words = key_words(str(key))
            if value not in (None, "") and (
                any(w in PII_WORDS for w in words) or "".join(words) in PII_WORDS
            ):
                tree[key] = REDACTED
                count += 1
            elif isinstance(value, str) and _EMAIL.search(value):
                tree[key] = _EMAIL.sub(REDACTED, value)
                count += 1
        return (json.dumps(tree, ensure_ascii=False), count) if count else (text, 0)

    # -- attribute maps ------------------------------------------------------------------

    def attributes(
        self,
        attributes: Mapping[str, Any],
        seen: dict[str, tuple[str, int]] | None = None,
    ) -> tuple[dict[str, Any] | None, int]:
        """A scrubbed copy of `attributes` and the count, or (None, 0) when untouched.

        `seen` maps texts already scrubbed to their result (pass one dict for all the
        attribute maps of a span, its events' included): each distinct text is scanned
        once, and a repeat of it is replaced by the same result and not counted again.
        """
        count = 0
        out: dict[str, Any] | None = None
        # Our mirrors share one string object, and a passthrough tool's output often
        # equals its input: each distinct text is scanned once per span.
        if seen is None:
            seen = {}
        cache = self._cache
        safe = self._safe
        shortest = 0 if self._extra else _MIN_SECRET  # shorter strings hold no credential
        for key, value in attributes.items():
            if key in safe:
                continue  # a type, name, id, count, model or flag we wrote
            secret = cache.get(key)
            if secret is None:
                secret = self.secret_key(key)
            if (
                not secret
                and value.__class__ is str
                and len(value) < shortest
                and key not in _TRAIT_KEYS
            ):
                continue  # the common case: a short value under an ordinary key
            new = value
            if secret:
                if value not in ("", REDACTED):
                    new, n = REDACTED, 1
                else:
                    n = 0
            elif isinstance(value, str):
                if key in _TRAIT_KEYS and not self.send_default_pii:
                    new, n = self.traits_text(value)
                    more = self.text(new)
                    new, n = more[0], n + more[1]
                else:
                    hit = seen.get(value)
                    if hit is None:
                        new, n = seen[value] = self.text(value)
                    else:  # a mirror of a value already counted
                        new, n = hit[0], 0
            elif isinstance(value, (tuple, list)) and value and isinstance(value[0], str):
                pairs = [self.text(item) if isinstance(item, str) else (item, 0) for item in value]
                n = sum(p[1] for p in pairs)
                if n:
                    new = tuple(p[0] for p in pairs)
            else:
                n = 0
            if new is not value:
                if out is None:
                    out = dict(attributes)
                out[key] = new
                count += n
        return out, count


def redactor_for(config: Any) -> Redactor:
    """The redactor a client's configuration asks for."""
    return Redactor(
        enabled=config.default_scrubbing,
        extra_keys=config.scrub_keys,
        extra_patterns=config.scrub_patterns,
        allow_keys=config.scrub_allow_keys,
        send_default_pii=config.send_default_pii,
    )
