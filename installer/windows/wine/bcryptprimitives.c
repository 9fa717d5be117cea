/* bcryptprimitives.dll for Wine 8.0, which lacks it (Windows 10 and later ship it).
 *
 * Rust's standard library (1.78 and later) takes its random numbers from
 * ProcessPrng in this DLL, so every Rust extension module built since then
 * (pydantic-core, jiter, cryptography) fails to load under Wine 8.0 with "DLL
 * load failed: Module not found". The Wine test lane puts this one beside its
 * python.exe; the shipped app never carries it. ProcessPrng is documented to
 * always succeed; BCryptGenRandom with the system RNG is what Wine's own later
 * versions use for it.
 */
#include <windows.h>
#include <bcrypt.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T size)
{
    while (size > 0) {
        ULONG chunk = size > 0x40000000 ? 0x40000000 : (ULONG)size;
        if (BCryptGenRandom(NULL, data, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0)
            return FALSE;
        data += chunk;
        size -= chunk;
    }
    return TRUE;
}
