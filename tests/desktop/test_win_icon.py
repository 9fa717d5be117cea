"""The Windows tray icon: every size the notification area asks for, loaded at its size."""

from __future__ import annotations

import io
import sys

import pytest
from PIL import Image

from ghubai_tray.desktop.icon import IconKind, icon_image
from ghubai_tray.desktop.win_icon import ICO_SIZES, ico_bytes, sharp_icon_class, small_icon_size


@pytest.mark.parametrize("kind", list(IconKind))
def test_the_ico_holds_each_size_windows_draws_at_each_display_scale(kind: IconKind) -> None:
    ico = Image.open(io.BytesIO(ico_bytes(icon_image(kind, 64))))
    assert {(16, 16), (20, 20), (24, 24), (32, 32), (40, 40)} <= ico.info["sizes"]
    assert ico.info["sizes"] == {(s, s) for s in ICO_SIZES}


@pytest.mark.skipif(sys.platform != "win32", reason="loads the icon with Windows' LoadImageW")
def test_the_tray_icon_is_loaded_at_the_notification_areas_own_size() -> None:
    import ctypes
    from ctypes import wintypes

    import pystray

    assert pystray.Icon.__module__.endswith("_win32")
    icon = sharp_icon_class(pystray.Icon)("test", icon_image(IconKind.CONTRIBUTING, 64), "t")
    try:
        icon._assert_icon_handle()
        assert icon._icon_handle

        class IconInfo(ctypes.Structure):
            _fields_ = [("fIcon", wintypes.BOOL), ("xHotspot", wintypes.DWORD),
                        ("yHotspot", wintypes.DWORD), ("hbmMask", wintypes.HBITMAP),
                        ("hbmColor", wintypes.HBITMAP)]

        class Bitmap(ctypes.Structure):
            _fields_ = [("bmType", wintypes.LONG), ("bmWidth", wintypes.LONG),
                        ("bmHeight", wintypes.LONG), ("bmWidthBytes", wintypes.LONG),
                        ("bmPlanes", wintypes.WORD), ("bmBitsPixel", wintypes.WORD),
                        ("bmBits", ctypes.c_void_p)]

        user32 = ctypes.WinDLL("user32")  # type: ignore[attr-defined,unused-ignore]
        gdi32 = ctypes.WinDLL("gdi32")  # type: ignore[attr-defined,unused-ignore]
        info = IconInfo()
        user32.GetIconInfo.argtypes = (ctypes.c_void_p, ctypes.POINTER(IconInfo))
        assert user32.GetIconInfo(icon._icon_handle, ctypes.byref(info))
        bitmap = Bitmap()
        gdi32.GetObjectW.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)
        assert gdi32.GetObjectW(info.hbmColor, ctypes.sizeof(bitmap), ctypes.byref(bitmap))
        assert bitmap.bmWidth == bitmap.bmHeight == small_icon_size() == 16  # 96 DPI here
    finally:
        icon._hide()
