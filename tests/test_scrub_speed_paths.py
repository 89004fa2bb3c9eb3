"""The fast paths of `Redactor.text` give the same text and count as the plain scan.

`reference_text` below is the scan without shortcuts: one `in` per key trigger, then one
`subn` per credential pattern. Every fast path (grouped trigger searches, the characters a
pattern's matches must contain, ...) must agree with it on long texts, where the fast
paths run, and on texts just around the size thresholds.
"""

from __future__ import annotations

import json
import re
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mv37.rollout.pipeline._scrub import (
    _CLEAN_CACHE_CHARS,
    _CREDENTIALS,
    _KEY_TRIGGERS,
    _MIN_SECRET,
    _SHORT_TEXT,
    REDACTED,
    Redactor,
    first_letter_searches,
)

CREDENTIALS = (
    "sk-proj-A1b2C3d4E5f6G7h8J9k0L1m2",
    "Bearer abcDEF123456ghiJKL",
    "AKIAIOSFODNN7EXAMPLE",
    "ASIAIOSFODNN7EXAMPLE",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "ghp_" + "a1" * 18,
    "github_pat_" + "B2_" * 15,
    "xoxb-1234567890-abcdef",
    "AIza" + "Sy0_-" * 7,
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
)
SECRET_KEYS = ("password", "apiKey", "client_secret", "Authorization", "cc_number", "cvv", "SSN")
CONFIGS: tuple[dict[str, Any], ...] = (
    {},
    {"extra_keys": ["tenant_pin", "x"], "extra_patterns": [r"ACME-\d{6}"]},
    {"enabled": False, "extra_keys": ["tenant_pin"]},
    {"allow_keys": ["password"]},
)


def reference_walk(redactor: Redactor, node: Any) -> tuple[Any, int]:
    """A masked copy of a parsed tree, and how many values were masked."""
    if isinstance(node, dict):
        count = 0
        out: dict[str, Any] = {}
        for key, value in node.items():
            if redactor.secret_key(str(key)) and value not in (None, "", REDACTED):
                out[key] = REDACTED
                count += 1
            else:
                out[key], n = reference_walk(redactor, value)
                count += n
        return out, count
    if isinstance(node, list):
        count = 0
        items = []
        for item in node:
            walked, n = reference_walk(redactor, item)
            items.append(walked)
            count += n
        return items, count
    return node, 0


def reference_json_keys(redactor: Redactor, text: str) -> tuple[str, int]:
    """Secret JSON keys masked by parsing and walking every document."""
    if text.lstrip()[:1] in ("{", "["):
        try:
            tree = json.loads(text)
        except ValueError:
            tree = None
        if tree is not None:
            tree, count = reference_walk(redactor, tree)
            if count:
                return json.dumps(tree, ensure_ascii=False), count
            return text, 0
    return redactor._json_keys_by_pattern(text)


def reference_text(redactor: Redactor, text: str) -> tuple[str, int]:
    """`Redactor.text` without fast paths: what every fast path must reproduce."""
    if len(text) < _MIN_SECRET and not redactor._extra:
        return text, 0
    count = 0
    lower = text.lower()
    triggers = redactor._key_triggers
    if ('":' in text or '" :' in text) and any(t in lower for t in triggers):
        text, count = reference_json_keys(redactor, text)
        if count:
            lower = text.lower()
    for trigger, _needs, credential in _CREDENTIALS if redactor.enabled else ():
        if trigger is None or trigger in lower:
            text, n = re.subn(credential, REDACTED, text)
            count += n
    for extra in redactor._extra:
        text, n = extra.subn(REDACTED, text)
        count += n
    return text, count


def search_payload(seed: int, records: int = 10) -> dict[str, Any]:
    """The shape `benchmarks/privacy.py` scrubs: about 210 characters per record."""
    return {
        "query": f"orders for customer {seed} shipped last week",
        "results": [
            {
                "id": f"ord-{seed}-{i}",
                "customer": {"id": f"c-{seed}", "tier": "gold", "country": "FR"},
                "items": [{"sku": f"sku-{i}-{j}", "qty": j + 1} for j in range(2)],
                "notes": "left at the front desk, signed by reception",
            }
            for i in range(records)
        ],
    }


def assert_like_reference(text: str, **config: Any) -> tuple[str, int]:
    result = Redactor(**config).text(text)
    assert result == reference_text(Redactor(**config), text)
    return result


# -- the pieces ---------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.text(alphabet="abcs", min_size=1, max_size=4), min_size=1, max_size=6),
    st.text(alphabet="abcsx", max_size=40),
)
def test_first_letter_searches_find_exactly_the_texts_holding_a_word(
    words: list[str], text: str
) -> None:
    found = any(p.search(text) for p in first_letter_searches(words))
    assert found == any(word in text for word in words)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=sorted(set("".join(_KEY_TRIGGERS)) | {" ", "_"}), max_size=60))
def test_grouped_key_triggers_answer_like_one_in_per_trigger(text: str) -> None:
    redactor = Redactor()
    assert redactor._has_key_trigger(text) == any(t in text for t in _KEY_TRIGGERS)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="tenaipxyz_", max_size=40))
def test_extra_key_words_are_searched_too(text: str) -> None:
    for config in CONFIGS:
        redactor = Redactor(**config)
        expected = any(t in text for t in redactor._key_triggers)
        assert redactor._has_key_trigger(text) == expected


@pytest.mark.parametrize("trigger", _KEY_TRIGGERS)
def test_each_trigger_alone_in_a_long_text_is_found(trigger: str) -> None:
    text = "x" * 3000 + trigger + "x" * 3000
    assert Redactor()._has_key_trigger(text)
    assert not Redactor()._has_key_trigger(text.replace(trigger, trigger[:-1] + "_"))


@pytest.mark.parametrize(
    ("needs", "pattern"), [(needs, pattern) for trigger, needs, pattern in _CREDENTIALS]
)
def test_needed_characters_are_in_every_match(needs: str, pattern: str) -> None:
    if "(?<=" in pattern:  # the bearer pattern: guarded by its trigger, needs nothing
        assert not needs
        return

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.from_regex(pattern, fullmatch=True))
    def check(match: str) -> None:
        assert all(char in match for char in needs), (match, needs)

    check()


# -- whole texts --------------------------------------------------------------------------------


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.parametrize("where", ["value", "notes", "end"])
def test_a_credential_in_a_2kb_json_text_is_masked_like_the_reference(
    credential: str, where: str
) -> None:
    payload = search_payload(7)
    if where == "value":
        payload["results"][3]["customer"]["id"] = credential
    elif where == "notes":
        payload["results"][7]["notes"] += " " + credential
    text = json.dumps(payload)
    if where == "end":
        text += " " + credential
    assert len(text) > 2000
    scrubbed, count = assert_like_reference(text)
    assert count == 1
    assert credential.rsplit(maxsplit=1)[-1] not in scrubbed


@pytest.mark.parametrize("key", SECRET_KEYS)
@pytest.mark.parametrize("depth", [0, 2, 4])
def test_a_secret_key_deep_in_a_long_json_text_is_masked_like_the_reference(
    key: str, depth: int
) -> None:
    leaf: Any = {key: "hunter22"}
    for level in range(depth):
        leaf = {"data": leaf, "level": level}
    payload = search_payload(3)
    payload["results"][5]["items"].append(leaf)
    text = json.dumps(payload)
    scrubbed, count = assert_like_reference(text)
    assert "hunter22" not in scrubbed
    assert count == 1


@pytest.mark.parametrize("after", [20, 200, 1000])
def test_truncated_long_json_masks_scalars_like_the_reference(after: int) -> None:
    payload = search_payload(5)
    payload["results"][0]["password"] = "hunter22"
    payload["results"][0]["api_key"] = CREDENTIALS[0]
    text = json.dumps(payload)
    text = text[: text.index("hunter22") + after] + "…[truncated]"
    scrubbed, count = assert_like_reference(text)
    assert count > 0
    assert "hunter22" not in scrubbed


def _sized(size: int, secret: str) -> str:
    """A JSON-ish text of exactly `size` characters that ends with `secret`."""
    head = '{"notes": "'
    tail = '", ' + secret
    return head + "y" * (size - len(head) - len(tail)) + tail


@pytest.mark.parametrize(
    "size",
    [
        _CLEAN_CACHE_CHARS - 1,
        _CLEAN_CACHE_CHARS,
        _CLEAN_CACHE_CHARS + 1,
        _SHORT_TEXT - 1,
        _SHORT_TEXT,
        _SHORT_TEXT + 1,
        4 * _SHORT_TEXT,
    ],
)
@pytest.mark.parametrize(
    "secret", ['"password": "hunter22"}', '"cc_number": "4111"}', CREDENTIALS[2], CREDENTIALS[4]]
)
def test_texts_around_the_size_thresholds_scrub_like_the_reference(size: int, secret: str) -> None:
    text = _sized(size, secret)
    assert len(text) == size
    for config in CONFIGS:
        assert_like_reference(text, **config)


def test_several_credentials_in_one_long_text_are_all_masked_like_the_reference() -> None:
    text = "\n".join(f"line {i}: {c} and more words" for i, c in enumerate(CREDENTIALS * 3))
    text = json.dumps({"log": text, "token": "t0k3n", "notes": "x" * 600})
    scrubbed, count = assert_like_reference(text)
    assert count == 1 + 3 * len(CREDENTIALS)
    for credential in CREDENTIALS:
        assert credential.rsplit(maxsplit=1)[-1] not in scrubbed


def test_attributes_mask_long_values_like_the_reference() -> None:
    payload = search_payload(1)
    payload["results"][2]["customer"]["password"] = "hunter22"
    text = json.dumps(payload) + " " + CREDENTIALS[0]
    clean = json.dumps(search_payload(2))
    redactor = Redactor()
    out, count = redactor.attributes({"input.value": text, "output.value": clean, "n": 3})
    assert out is not None
    assert out["input.value"] == reference_text(Redactor(), text)[0]
    assert out["output.value"] is clean
    assert count == reference_text(Redactor(), text)[1] == 2


@pytest.mark.parametrize(
    "text",
    [
        '{"password": "hunter22"}',
        '{"password": "hunter22"}\n ',
        '{"password": "hunter22"} \x0c',  # str whitespace, not JSON's: not a document
        '{"password": "hunter22"}\u00a0',
        '[{"password":"hunter22"}]',  # re-serialized by the walk, kept by the pattern
        '{"a": {"password": "hunter22"}, "b": 1} ]',  # ends like a document, is not one
        '{"a": {"token": "hunter22"}',  # truncated right after an object
        '{"password": "x", "password": ""}',  # duplicate keys: the last value counts
        '{"password": "", "token": null, "auth": "[REDACTED]"}',  # nothing left to mask
        '{"cc_number": "4111", "notes": "plain"}',  # its own trigger (cc_n)
        '{"max_tokens": 100, "api_version": "v1", "tokens": [1, 2]}',  # triggers, no secret
        '{"p\\u0061ssword": "hunter22", "auth_mode": "basic"}',  # an escaped key
        '  {"nested": [[{"deep": {"apiKey": "hunter22"}}]], "pad": "x"}',
    ],
)
def test_json_documents_mask_keys_like_parse_and_walk(text: str) -> None:
    padded = (
        text if len(text) > _SHORT_TEXT else text.replace('{"', '{"pad": "' + "y" * 600 + '", "', 1)
    )
    for candidate in (text, padded):
        for config in CONFIGS:
            assert_like_reference(candidate, **config)


def test_a_secret_deep_in_a_deeply_nested_document_is_masked_like_the_reference() -> None:
    leaf: Any = {"password": "hunter22", "list": [[[{"token": ["x"]}]]]}
    for level in range(300):
        leaf = {"level": level, "child": leaf} if level % 2 else [leaf, {"pad": "y"}]
    text = json.dumps(leaf)
    scrubbed, count = assert_like_reference(text)
    assert count == 2
    assert "hunter22" not in scrubbed


def test_a_document_with_triggers_but_no_secret_key_comes_back_as_is() -> None:
    payload = search_payload(9)
    payload["max_tokens"] = 100
    payload["results"][0]["notes"] = "auth token api access card pass secret"
    text = json.dumps(payload, indent=1)
    scrubbed, count = assert_like_reference(text)
    assert scrubbed is text
    assert count == 0


# -- property: random long texts ----------------------------------------------------------------

_words = st.sampled_from(
    [*_KEY_TRIGGERS, *CREDENTIALS, "cc", "number", "bearer", "x", "ACME-123456", "tenant"]
)
_keys = st.sampled_from(
    [*SECRET_KEYS, "query", "notes", "id", "items", "tenant_pin", "cc_number", "access"]
)
_leaves = st.one_of(
    st.lists(_words, max_size=4).map(" ".join),
    st.text(alphabet=string.ascii_letters + string.digits + " -_.", max_size=30),
    st.integers(),
    st.none(),
)
_trees = st.recursive(
    _leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(_keys, children, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    _trees,
    st.integers(0, 3000),
    st.sampled_from(["json", "truncated", "prose"]),
    st.integers(0, len(CONFIGS) - 1),
)
def test_random_long_texts_scrub_like_the_reference(
    tree: Any, padding: int, form: str, config: int
) -> None:
    text = json.dumps({"pad": "lorem ipsum " * (padding // 12), "body": tree})
    if form == "truncated":
        text = text[: len(text) * 2 // 3]
    elif form == "prose":
        text = text.replace('"', "").replace("{", " ").replace("}", " ")
    assert_like_reference(text, **CONFIGS[config])
