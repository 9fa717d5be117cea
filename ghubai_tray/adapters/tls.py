"""The one TLS context every outgoing connection uses.

By default certificates are checked against the operating system's trust
store through ``truststore`` (Windows certificate store, macOS keychain,
Linux system CAs), so a company or home CA the owner installed is trusted the
same way their browser trusts it; httpx's default (certifi's bundle)
would refuse it. ``ALLOW_INVALID_CERTS=1`` turns checking off, for
development hubs with self-signed certificates only; the worker logs a warning
at every connect and shows it in its state.
"""

from __future__ import annotations

import ssl

import truststore


def client_context(allow_invalid_certs: bool) -> ssl.SSLContext:
    if allow_invalid_certs:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
