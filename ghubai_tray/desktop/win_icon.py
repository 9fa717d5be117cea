"""A sharp tray icon on Windows at every display scale.

The notification area draws icons at the *small* icon size, which Windows
scales with the display: 16 px at 100 %, 20 at 125 %, 24 at 150 %, 32 at
200 %. pystray 0.19.5 saves our image as an ICO with Pillow's default sizes
(no 20 or 40) and loads it at the *large* icon size (32 px at 100 %), which the
shell then shrinks: blurry at 100 %, and resampled from the wrong size at
125 %. Here the ICO carries every size Windows asks for and is loaded at the
small size of this display, so the shell draws it pixel for pixel.

pystray's Windows backend is pinned (pyproject.toml); ``_assert_icon_handle``
is the one method this replaces.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from typing import Any

from PIL import Image

# Small icon sizes at 100-300 % scale, and a few large ones for Alt-Tab and the like.
ICO_SIZES = (16, 20, 24, 32, 40, 48, 64)
SM_CXSMICON = 49
IMAGE_ICON = 1
LR_LOADFROMFILE = 0x10


def ico_bytes(image: Image.Image) -> bytes:
    """The image as one .ico holding each of :data:`ICO_SIZES`."""
    out = io.BytesIO()
    image.convert("RGBA").save(out, format="ICO", sizes=[(s, s) for s in ICO_SIZES])
    return out.getvalue()


def small_icon_size() -> int:
    """The notification area's icon size on this display (16 at 100 % scale)."""
    if sys.platform != "win32":
        return 16
    import ctypes

    return int(ctypes.windll.user32.GetSystemMetrics(SM_CXSMICON)) or 16  # type: ignore[attr-defined,unused-ignore]


def sharp_icon_class(base: type[Any]) -> type[Any]:
    """pystray's Windows ``Icon`` with an icon handle loaded as the module docstring says."""

    class SharpIcon(base):  # type: ignore[misc]
        def _assert_icon_handle(self) -> None:
            if getattr(self, "_icon_handle", None):
                return
            import ctypes

            size = small_icon_size()
            fd, path = tempfile.mkstemp(suffix=".ico")
            try:
                with os.fdopen(fd, "wb") as file:
                    file.write(ico_bytes(self.icon))
                load = ctypes.windll.user32.LoadImageW  # type: ignore[attr-defined,unused-ignore]
                load.restype = ctypes.c_void_p
                load.argtypes = (ctypes.c_void_p, ctypes.c_wchar_p, ctypes.c_uint, ctypes.c_int,
                                 ctypes.c_int, ctypes.c_uint)
                self._icon_handle = load(None, path, IMAGE_ICON, size, size, LR_LOADFROMFILE)
            finally:
                os.unlink(path)

    SharpIcon.__module__ = base.__module__  # the backend, for whoever asks which one runs
    return SharpIcon
