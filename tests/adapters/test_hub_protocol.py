"""The pure half of the hub client: URLs, negotiate answers, records, tolerant decoding."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pysignalr.messages import (
    CloseMessage,
    CompletionMessage,
    InvocationMessage,
    PingMessage,
)

from ghubai_tray.adapters.hub import (
    MAX_MESSAGE_BYTES,
    RS,
    Malformed,
    MessageTooLarge,
    Negotiated,
    RecordBuffer,
    Redirect,
    decode_record,
    encode,
    encode_handshake,
    handshake_error,
    negotiate_url,
    parse_negotiate,
    registration,
    split_records,
    websocket_url,
)
from ghubai_tray.core.errors import HubUnreachable


def test_negotiate_url_keeps_the_query_and_adds_version_and_token() -> None:
    url = negotiate_url("https://hub.example/gridhub/?tenant=a b", "t0k")
    parts = urlsplit(url)
    assert parts.path == "/gridhub/negotiate"
    assert parse_qs(parts.query) == {"tenant": ["a b"], "negotiateVersion": ["1"],
                                     "access_token": ["t0k"]}
    assert "access_token" not in negotiate_url("http://h/gridhub", None)


def test_websocket_url_switches_scheme_and_carries_id_and_token() -> None:
    url = websocket_url("https://hub.example/gridhub?id=stale", "new+id/=", "t")
    parts = urlsplit(url)
    assert parts.scheme == "wss" and parse_qs(parts.query) == {"id": ["new+id/="],
                                                               "access_token": ["t"]}
    assert websocket_url("http://h/x", "i", None).startswith("ws://h/x?id=i")


NEGOTIATE = {
    "v1": ({"negotiateVersion": 1, "connectionId": "c", "connectionToken": "t",
            "availableTransports": [{"transport": "WebSockets", "transferFormats": ["Text"]}]},
           Negotiated("U", "t", "tok")),
    "v0": ({"connectionId": "c"}, Negotiated("U", "c", "tok")),
    "azure-redirect": ({"url": "https://x.service.signalr.net/client/?hub=h",
                        "accessToken": "jwt"},
                       Redirect("https://x.service.signalr.net/client/?hub=h", "jwt")),
}


@pytest.mark.parametrize("body,expected", NEGOTIATE.values(), ids=NEGOTIATE.keys())
def test_parse_negotiate(body: dict[str, Any], expected: object) -> None:
    assert parse_negotiate(body, "U", "tok") == expected


NEGOTIATE_ERRORS = {
    "error": ({"error": "Negotiate failed"}, "refused the connection: Negotiate failed"),
    "no-websockets": ({"connectionId": "c", "availableTransports": [
        {"transport": "LongPolling"}]}, "does not offer WebSockets"),
    "v1-without-token": ({"negotiateVersion": 1, "connectionId": "c"}, "no connectionToken"),
    "not-an-object": ([], "not a JSON object"),
}


@pytest.mark.parametrize("body,reason", NEGOTIATE_ERRORS.values(), ids=NEGOTIATE_ERRORS.keys())
def test_parse_negotiate_errors(body: Any, reason: str) -> None:
    with pytest.raises(HubUnreachable, match=reason):
        parse_negotiate(body, "U", None)


def test_records_split_across_frames() -> None:
    records, rest = split_records(f'{{"type":6}}{RS}{{"type":1,"tar')
    assert records == ['{"type":6}'] and rest == '{"type":1,"tar'
    records, rest = split_records(rest + f'get":"x","arguments":[]}}{RS}{RS}')
    assert records == ['{"type":1,"target":"x","arguments":[]}'] and rest == ""


PIECES = st.lists(st.text(alphabet=st.sampled_from(["a", "é", RS, "{", "}"]), max_size=12),
                  max_size=20)


@given(PIECES)
def test_the_record_buffer_finds_the_records_of_the_whole_text_however_it_is_cut(
        pieces: list[str]) -> None:
    buffer = RecordBuffer(limit=1_000)
    records = [r for piece in pieces for r in buffer.feed(piece)]
    expected, _ = split_records("".join(pieces))
    assert records == expected


@given(PIECES, st.integers(1, 30))
def test_the_record_buffer_never_holds_more_than_its_limit(pieces: list[str], limit: int
                                                           ) -> None:
    buffer = RecordBuffer(limit)
    whole = "".join(pieces)
    try:
        for piece in pieces:
            buffer.feed(piece)
    except MessageTooLarge:
        assert any(len(part) > limit for part in whole.split(RS))
        return
    assert all(len(part) <= limit for part in whole.split(RS))


def test_a_record_nested_too_deeply_is_malformed_not_an_error() -> None:
    assert decode_record("[" * 100_000 + "]" * 100_000) == Malformed(
        "a message is nested too deeply (more than 64 levels)")
    assert decode_record("[" + "[]," * 100_000 + "[]]") == Malformed(
        "a message holds more than 65,536 values")


DECODED = {
    "invocation": ('{"type":1,"target":"RequestOpenAI","arguments":[{"a":1}],"extra":true}',
                   InvocationMessage(invocation_id=None, target="RequestOpenAI",
                                     arguments=[{"a": 1}])),
    "ping": ('{"type":6}', PingMessage()),
    "close": ('{"type":7,"error":"bye","allowReconnect":true}',
              CloseMessage(error="bye", allow_reconnect=True)),
    "completion": ('{"type":3,"invocationId":"1","error":"x"}',
                   CompletionMessage(invocation_id="1", error="x")),
    "stream-item-ignored": ('{"type":2,"invocationId":"1","item":1}', None),
    "unknown-type": ('{"type":99}', Malformed("a message has an unknown type '99'")),
    "no-target": ('{"type":1,"arguments":[]}', Malformed("an invocation has no target")),
    "not-json": ("{nope", Malformed("a message is not JSON")),
    "array": ("[1]", Malformed("a message is not a JSON object")),
}


@pytest.mark.parametrize("record,expected", DECODED.values(), ids=DECODED.keys())
def test_decode_record(record: str, expected: object) -> None:
    assert decode_record(record) == expected


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                    | st.text(max_size=20),
                    lambda kids: st.lists(kids, max_size=3)
                    | st.dictionaries(st.text(max_size=10), kids, max_size=4), max_leaves=15)
MESSAGES = st.fixed_dictionaries({}, optional={
    "type": st.integers(-2, 10) | JSON, "target": JSON | st.sampled_from(["RequestInference"]),
    "arguments": JSON, "invocationId": JSON, "error": JSON, "allowReconnect": JSON})


@given(st.one_of(MESSAGES.map(json.dumps), JSON.map(json.dumps), st.text(max_size=50)))
def test_any_record_decodes_or_is_reported_never_raises(record: str) -> None:
    result = decode_record(record)
    assert result is None or isinstance(result, Malformed | InvocationMessage | PingMessage
                                         | CloseMessage | CompletionMessage)


def test_our_invocations_carry_no_headers_and_end_with_the_separator() -> None:
    text = encode(InvocationMessage(invocation_id=None, target="RegisterNode",
                                    arguments=[{"machineName": "m", "availableModels": []}]))
    assert text.endswith(RS)
    assert json.loads(text[:-1]) == {"type": 1, "target": "RegisterNode",
                                     "arguments": [{"machineName": "m", "availableModels": []}]}
    assert encode_handshake() == '{"protocol": "json", "version": 1}' + RS


@pytest.mark.parametrize("record,error", [
    ("{}", None), ('{"error":"Requested protocol \'x\' is not available."}',
                   "the hub refused the handshake: Requested protocol 'x' is not available."),
    ("nope", "the hub's handshake answer is not JSON")])
def test_handshake_answers(record: str, error: str | None) -> None:
    assert handshake_error(record) == error


def test_registration_fits_the_message_limit() -> None:
    few = ["llama3.2:1b", "mistral:7b"]
    assert registration("m", few) == ({"machineName": "m", "availableModels": few}, 0)
    many = [f"namespace/model-{i:04d}:latest-" + "é" * 40 for i in range(2000)]
    arg, left_out = registration("m", many)
    kept = arg["availableModels"]
    assert left_out == 2000 - len(kept) > 0 and kept == many[: len(kept)]
    message = InvocationMessage(invocation_id=None, target="RegisterNode", arguments=[arg])
    assert len(encode(message).encode()) <= MAX_MESSAGE_BYTES
