"""The worker's own exceptions, so callers catch our names and never a library's.

    GhubAiError
    ├── ConfigError          a setting is invalid (names the setting, its source, what is expected)
    ├── TokenStoreError      the OS keyring cannot be used (says what to do instead)
    ├── HubError             talking to the hub failed
    │   ├── AuthRejected     401/403: the token is wrong; not a transient fault
    │   │   └── TokenNeeded  401/403 to a request without a token: nothing was refused
    │   ├── HubUnreachable   refused, timed out, TLS failure, 5xx, silent server
    │   └── HubClosed        the hub ended the connection (with its reason)
    ├── OllamaError          talking to Ollama failed
    │   ├── OllamaUnreachable  nothing answers at the configured URL
    │   ├── OllamaAnswerError  Ollama answered with an error (status and its message)
    │   └── TagsParseError     ``/api/tags`` answered something that is not a model list
    └── RequestRejected      an inference request from the hub was refused before Ollama saw it

Foreign errors (websockets, httpx, keyring, OSError) are mapped where they enter,
with ``raise ... from None`` when the original text could carry a URL with
the token in its query string. Every message is written for the owner of the
machine: it says what happened in plain words and, where it helps, what to do.
"""

from __future__ import annotations


class GhubAiError(Exception):
    """Base of every error the worker raises on purpose."""


class ConfigError(GhubAiError):
    """A setting is invalid; the program must not start half-configured (exit code 2)."""


class TokenStoreError(GhubAiError):
    """The OS keyring is missing, locked or refused the operation."""


class HubError(GhubAiError):
    """The hub connection failed; the supervisor publishes the text and retries."""


class AuthRejected(HubError):
    """The hub refused the token (HTTP 401/403); retried slowly, and at once on a new token."""


class TokenNeeded(AuthRejected):
    """401/403 to a request that carried no token (none is set, or ours was withheld from
    an address the hub redirected to): saying "refused" would send the owner to replace a
    token the hub never saw."""


class HubUnreachable(HubError):
    """No usable hub at the URL right now; retried with backoff."""


class NoHubHere(HubUnreachable):
    """Something answers at the URL, but no hub: 404 on negotiate (a wrong path?)."""


class SecureConnectionFailed(HubUnreachable):
    """TLS failed: an untrusted certificate, or no TLS at all at an https URL."""


class HubClosed(HubError):
    """The hub closed the connection, saying why (or not)."""

    def __init__(self, message: str, *, allow_reconnect: bool = True) -> None:
        super().__init__(message)
        self.allow_reconnect = allow_reconnect


class OllamaError(GhubAiError):
    """Ollama could not serve a request or list its models."""


class OllamaUnreachable(OllamaError):
    """Nothing answers at the Ollama URL (not running, wrong port, firewall)."""


class OllamaAnswerError(OllamaError):
    """Ollama answered with an error; the text carries its status and message."""


class TagsParseError(OllamaError):
    """``/api/tags`` answered something that is not one of the known model-list shapes."""


class RequestRejected(GhubAiError):
    """An inference request was refused before reaching Ollama.

    ``request_id`` is the id to send the ``[error]`` final to, or ``None`` when
    the invocation had no usable id (then it is only logged).
    """

    def __init__(self, reason: str, request_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.request_id = request_id


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}
_CONTROL.update({0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r", 0x85: "\\x85", 0x2028: "\\u2028",
                 0x2029: "\\u2029"})


def one_line(text: str, limit: int = 300) -> str:
    """A stranger's text made safe to show: one line (breaks and control characters
    escaped, visibly) and at most ``limit`` characters, saying how much was left out."""
    flat = text.translate(_CONTROL)
    if len(flat) <= limit:
        return flat
    return f"{flat[:limit]}... ({len(flat) - limit:,} more characters)"
