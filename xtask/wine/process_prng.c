/*
 * bcryptprimitives.dll for Wine 8: exports the one function Rust's standard library
 * imports from it, ProcessPrng, which Wine 8 lacks (every Windows build of a Rust
 * program then fails to start). It forwards to SystemFunction036 (RtlGenRandom) of
 * advapi32, which Wine has. `cargo xtask wine` builds it with mingw and puts it next to
 * the test binaries; nothing of it ships.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG chunk = len > 0x7fffffff ? 0x7fffffff : (ULONG)len;
        if (!SystemFunction036(data, chunk)) {
            return FALSE;
        }
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
