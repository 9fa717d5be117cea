"""Which of Ollama's models this machine shares, as one pure rule.

A model is shared when the owner named it in ``shared_models``; otherwise
when new models are shared automatically (``share_new_models``), it is not a
cloud model, and the owner did not name it in ``unshared_models``. Cloud
models run on ollama.com under the owner's account, not on their GPU, so
they are never shared without being named. Names match case-insensitively,
as the hub matches them.
"""

from __future__ import annotations

from collections.abc import Iterable

from ghubai_tray.core.tags import LocalModel


def is_shared(
    model: LocalModel, share_new: bool, shared: Iterable[str], unshared: Iterable[str]
) -> bool:
    name = model.name.casefold()
    if name in {m.casefold() for m in shared}:
        return True
    return share_new and not model.remote and name not in {m.casefold() for m in unshared}
