"""A keyring backend that never answers, as a Secret Service waiting on an unlock prompt does.

Selected with ``PYTHON_KEYRING_BACKEND=tests.hanging_keyring.Hanging``: keyring's own way of
choosing a backend, so the app's real keyring code path runs against it. No real Secret
Service can be made to hang on demand, hence this stand-in (it answers nothing, ever).
"""

from __future__ import annotations

import threading

from keyring.backend import KeyringBackend

_never = threading.Event()


class Hanging(KeyringBackend):
    priority = 1

    def get_password(self, service: str, username: str) -> str | None:
        _never.wait()
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        _never.wait()

    def delete_password(self, service: str, username: str) -> None:
        _never.wait()
