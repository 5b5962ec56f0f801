// Force-included into ggml-cpu.c by native/CMakeLists.txt on MinGW-w64. Debian 12's MinGW-w64 (10) headers declare
// SetThreadInformation and ThreadPowerThrottling but not THREAD_POWER_THROTTLING_STATE, with which ggml keeps Windows
// 11 from parking its threads on a few cores; newer MinGW-w64 and the Windows SDK define it as below. windows.h is
// included here as ggml-cpu.c includes it, so that the check sees the headers' own definition where they have one.
#pragma once

#define WIN32_LEAN_AND_MEAN
#ifndef NOMINMAX
#    define NOMINMAX
#endif
#include <windows.h>

#ifndef THREAD_POWER_THROTTLING_CURRENT_VERSION
#    define THREAD_POWER_THROTTLING_CURRENT_VERSION 1
#    define THREAD_POWER_THROTTLING_EXECUTION_SPEED 0x1

typedef struct _THREAD_POWER_THROTTLING_STATE {
    ULONG Version;
    ULONG ControlMask;
    ULONG StateMask;
} THREAD_POWER_THROTTLING_STATE;
#endif
