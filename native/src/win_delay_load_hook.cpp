// On Windows an addon imports the Node-API functions from node.exe. Inside VS Code the process is Code.exe (Electron,
// which exports the same functions) and no node.exe is loaded, so a plain import would fail to load. Both addons import
// them delay-loaded (native/CMakeLists.txt makes the import library), and this hook, which the delay-load helper asks
// before it loads a DLL, answers "node.exe" with the process's own executable, whatever its name: node-gyp's
// win_delay_load_hook.cc, for MinGW-w64's helper.
#ifndef WIN32_LEAN_AND_MEAN
#    define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
// windows.h first: delayimp.h uses its types.
#include <delayimp.h>
#include <string.h>

static FARPROC WINAPI load_exe_hook(unsigned event, PDelayLoadInfo info) {
    if (event == dliNotePreLoadLibrary && _stricmp(info->szDll, "node.exe") == 0) {
        return (FARPROC) GetModuleHandleA(nullptr);
    }
    return nullptr;
}

PfnDliHook __pfnDliNotifyHook2 = load_exe_hook;
