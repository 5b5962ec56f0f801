// The log functions of llama.cpp's common/log.h that common/fit.cpp (the GPU-layer fit the addon compiles in)
// calls, writing to llama.cpp's log, which the addon keeps (addon.cpp), instead of common/log.cpp's worker thread:
// that file's std::condition_variable needs libstdc++ 3.4.30 (GCC 12), newer than the packaged builds may need of a
// system (native/cpu-builds.json, test/native/portable.test.ts).
#include "llama.h"
#include "log.h"

#include <cstdarg>
#include <cstdio>

// The fit's trace lines (LOG_TRC) are left out; its warnings and errors are kept.
int common_log_get_verbosity_thold(void) {
    return LOG_LEVEL_INFO;
}

struct common_log * common_log_main() {
    return nullptr;
}

void common_log_add(struct common_log *, enum ggml_log_level level, const char * fmt, ...) {
    char    line[1024];
    va_list args;
    va_start(args, fmt);
    std::vsnprintf(line, sizeof(line), fmt, args);
    va_end(args);
    ggml_log_callback callback  = nullptr;
    void *            user_data = nullptr;
    llama_log_get(&callback, &user_data);
    if (callback) {
        callback(level, line, user_data);
    }
}
