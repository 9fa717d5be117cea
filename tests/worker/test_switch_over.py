"""Nothing the owner changes cuts a hub request (issue 23, item 1).

Saving Settings used to reconnect whatever changed, and every request running on
the connection ended in "the worker lost its connection to the hub". Now an
unchanged token and hub keep the connection; a new token or hub opens the new
connection first, and the old one carries its requests to their end before it
closes (make before break). Driven as the tray drives it: the commands a Save
submits, and the token as the keyring holds it.
"""

from __future__ import annotations

import pytest

from ghubai_tray.core.state import ApplySettings, TokenChanged
from tests.testbed.hub import GridHub
from tests.testbed.ollama import OllamaStandIn
from tests.worker_bed import TOKEN, running_bed

MODEL = "llama3.2:1b"
NEW_TOKEN = "the-new-token"
LONG = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "go on"}]}


def slow_ollama() -> OllamaStandIn:
    """An answer of 60 tokens, 50 ms apart: three seconds to change something in."""
    return OllamaStandIn(token_delay=0.05, reply_tokens=["tok "] * 60)


async def test_saving_settings_that_change_no_connection_keeps_the_request_running() -> None:
    async with running_bed(ollama=slow_ollama()) as bed:
        await bed.registered(MODEL, "mistral:7b")
        (first,) = bed.hub.connections
        request = await bed.request("/api/chat", LONG)
        await bed.worker.wait_for(lambda s: s.active == 1, 15, "the request to run")
        # what the tray submits after every Save: the settings, and "the token may differ"
        bed.worker.submit(ApplySettings(bed.worker.settings))
        bed.worker.submit(TokenChanged())
        answer = await request.wait(30)
        assert request.chunks[-1]["tokenFragment"] == "", "served to the end"
        assert answer.count('"done":true') == 1
        assert list(bed.hub.connections) == [first], "the same connection throughout"
        assert bed.hub.closes == []


@pytest.mark.parametrize("how", ["token", "hub"])
async def test_a_new_token_connects_before_the_old_connection_ends(how: str) -> None:
    async with running_bed(ollama=slow_ollama(),
                           hub=GridHub(tokens=[TOKEN, NEW_TOKEN])) as bed:
        await bed.registered(MODEL, "mistral:7b")
        (first,) = bed.hub.connections
        request = await bed.request("/api/chat", LONG)
        await bed.worker.wait_for(lambda s: s.active == 1, 15, "the request to run")
        bed.token[0] = NEW_TOKEN
        if how == "token":
            bed.worker.submit(TokenChanged())
        else:  # Settings saved with another address of the same hub, and the new token
            settings = bed.worker.settings
            moved = settings.hub_url.replace("127.0.0.1", "localhost")
            from dataclasses import replace
            bed.worker.submit(ApplySettings(replace(settings, hub_url=moved)))
        await bed.hub.wait_until(
            lambda: (n := bed.hub.node_for(MODEL)) is not None and n.connection_id != first,
            15, "the new connection to register")
        assert bed.hub.tokens_seen[-1] == NEW_TOKEN
        assert first in bed.hub.connections, "the old connection still carries the request"
        assert not request.done.is_set()
        answer = await request.wait(30)
        assert request.chunks[-1]["tokenFragment"] == "", "served to the end"
        assert answer.count('"done":true') == 1
        await bed.hub.wait_until(lambda: first not in bed.hub.connections, 15,
                                 "the old connection to close once its request ended")
        assert len(bed.hub.connections) == 1
        # and the next request goes to the new connection
        again = await bed.request("/api/chat", {**LONG, "stream": False})
        await again.wait(30)
        assert again.chunks[-1]["tokenFragment"] == ""
