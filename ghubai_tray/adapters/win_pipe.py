"""The control channel's named pipe on Windows, open to its owner alone.

``multiprocessing``'s pipe listener creates its pipe with the default security
descriptor, which lets every account on the machine (Everyone, even anonymous)
open it for reading: another user could then hold the channel's connections.
This listener is the same, but every instance of the pipe carries a DACL that
names only the user running the app and SYSTEM, built from the user's own SID
(``GetTokenInformation``). The first instance keeps CPython's
``FILE_FLAG_FIRST_PIPE_INSTANCE``, so a pipe of that name made first by
somebody else makes the channel fail to open, rather than serve through theirs.

Windows only; imported by :mod:`ghubai_tray.adapters.control` there.
"""

from __future__ import annotations

import ctypes
import importlib
from ctypes import wintypes
from functools import cache
from multiprocessing import connection
from typing import Any

TOKEN_QUERY = 0x0008
TOKEN_USER = 1
SDDL_REVISION_1 = 1


class _SecurityAttributes(ctypes.Structure):
    _fields_ = [("nLength", wintypes.DWORD), ("lpSecurityDescriptor", ctypes.c_void_p),
                ("bInheritHandle", wintypes.BOOL)]


@cache
def _dlls() -> tuple[Any, Any]:
    """advapi32 and kernel32, with the argument types of the calls made here."""
    win_dll: Any = getattr(ctypes, "WinDLL")  # noqa: B009 - Windows' ctypes only
    advapi32, kernel32 = (win_dll(name, use_last_error=True)
                          for name in ("advapi32", "kernel32"))
    kernel32.GetCurrentProcess.restype = wintypes.HANDLE
    kernel32.LocalFree.argtypes = [ctypes.c_void_p]
    kernel32.CloseHandle.argtypes = [wintypes.HANDLE]
    advapi32.OpenProcessToken.argtypes = [wintypes.HANDLE, wintypes.DWORD,
                                          ctypes.POINTER(wintypes.HANDLE)]
    advapi32.GetTokenInformation.argtypes = [wintypes.HANDLE, ctypes.c_int, ctypes.c_void_p,
                                             wintypes.DWORD, ctypes.POINTER(wintypes.DWORD)]
    advapi32.ConvertSidToStringSidW.argtypes = [ctypes.c_void_p,
                                                ctypes.POINTER(ctypes.c_wchar_p)]
    advapi32.ConvertStringSecurityDescriptorToSecurityDescriptorW.argtypes = [
        wintypes.LPCWSTR, wintypes.DWORD, ctypes.POINTER(ctypes.c_void_p),
        ctypes.POINTER(wintypes.ULONG)]
    return advapi32, kernel32


def _check(ok: Any) -> None:
    if not ok:
        error: Any = getattr(ctypes, "WinError")  # noqa: B009 - Windows' ctypes only
        raise error(getattr(ctypes, "get_last_error")())  # noqa: B009


def user_sid() -> str:
    """The SID of the user this process runs as, like ``S-1-5-21-...-1001``."""
    advapi32, kernel32 = _dlls()
    token = wintypes.HANDLE()
    _check(advapi32.OpenProcessToken(kernel32.GetCurrentProcess(), TOKEN_QUERY,
                                     ctypes.byref(token)))
    try:
        size = wintypes.DWORD()
        advapi32.GetTokenInformation(token, TOKEN_USER, None, 0, ctypes.byref(size))
        buffer = ctypes.create_string_buffer(size.value)
        _check(advapi32.GetTokenInformation(token, TOKEN_USER, buffer, size,
                                            ctypes.byref(size)))
        sid = ctypes.cast(buffer, ctypes.POINTER(ctypes.c_void_p))[0]  # TOKEN_USER.User.Sid
        text = ctypes.c_wchar_p()
        _check(advapi32.ConvertSidToStringSidW(sid, ctypes.byref(text)))
        try:
            return str(text.value)
        finally:
            kernel32.LocalFree(text)
    finally:
        kernel32.CloseHandle(token)


def owner_only_sddl() -> str:
    """Protected DACL: full access for this user and SYSTEM, nobody else."""
    return f"D:P(A;;GA;;;{user_sid()})(A;;GA;;;SY)"


def _attributes() -> _SecurityAttributes:
    advapi32, _ = _dlls()
    descriptor = ctypes.c_void_p()
    _check(advapi32.ConvertStringSecurityDescriptorToSecurityDescriptorW(
        owner_only_sddl(), SDDL_REVISION_1, ctypes.byref(descriptor), None))
    return _SecurityAttributes(ctypes.sizeof(_SecurityAttributes), descriptor, False)


def owner_only_listener(address: str) -> connection.Listener:
    """A ``Listener`` (no authkey: the control channel checks the key per connection)
    whose pipe, every instance of it, only its owner can open."""
    winapi: Any = importlib.import_module("_winapi")
    BUFSIZE = getattr(connection, "BUFSIZE")  # noqa: B009,N806 - CPython's, as it uses it
    base: Any = getattr(connection, "PipeListener")  # noqa: B009 - Windows' only

    class OwnerOnlyPipeListener(base):  # type: ignore[misc]
        def __init__(self, where: str) -> None:
            self._security = _attributes()  # alive as long as pipes are made with it
            super().__init__(where)

        def _new_handle(self, first: bool = False) -> int:
            flags = winapi.PIPE_ACCESS_DUPLEX | winapi.FILE_FLAG_OVERLAPPED
            if first:
                flags |= winapi.FILE_FLAG_FIRST_PIPE_INSTANCE
            return int(winapi.CreateNamedPipe(
                self._address, flags,
                winapi.PIPE_TYPE_MESSAGE | winapi.PIPE_READMODE_MESSAGE | winapi.PIPE_WAIT,
                winapi.PIPE_UNLIMITED_INSTANCES, BUFSIZE, BUFSIZE,
                winapi.NMPWAIT_WAIT_FOREVER, ctypes.addressof(self._security)))

    listener = connection.Listener.__new__(connection.Listener)
    listener._listener = OwnerOnlyPipeListener(address)  # type: ignore[attr-defined]
    listener._authkey = None  # type: ignore[attr-defined]
    return listener
