// Node-API binding: model loading and decoding run on worker threads, steps stream back to JS.
#include "decoder.h"
#include "fit.h"
#include "ggml-backend.h"
#include "ggml.h"
#include "llama.h"

#include <napi.h>

#include <atomic>
#include <cstdlib>
#include <deque>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <utility>

namespace {

// llama.cpp's log: kept (the last lines) so that failures can say what llama.cpp said; printed on request.
std::mutex              g_log_mutex;
std::deque<std::string> g_log_lines;
const bool              g_log_echo = std::getenv("DREAM_CODER_LLAMA_LOG") != nullptr;

void on_llama_log(ggml_log_level level, const char * text, void *) {
    if (g_log_echo) {
        std::fputs(text, stderr);
    }
    if (level < GGML_LOG_LEVEL_WARN) {
        return;
    }
    std::lock_guard<std::mutex> lock(g_log_mutex);
    g_log_lines.emplace_back(text);
    while (g_log_lines.size() > 8) {
        g_log_lines.pop_front();
    }
}

// The kept lines as one line ("; " between them, so that an error built from them is one sentence), forgotten.
std::string take_llama_log() {
    std::lock_guard<std::mutex> lock(g_log_mutex);
    std::string                 all;
    for (const auto & l : g_log_lines) {
        all += l;
    }
    g_log_lines.clear();
    std::string        out;
    std::istringstream lines(all);
    for (std::string line; std::getline(lines, line);) {
        const size_t start = line.find_first_not_of(" \t\r");
        if (start != std::string::npos) {
            out += (out.empty() ? "" : "; ") + line.substr(start, line.find_last_not_of(" \t\r") + 1 - start);
        }
    }
    return out;
}

std::vector<llama_token> to_tokens(const Napi::Value & v) {
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
        throw Napi::TypeError::New(v.Env(), "tokens must be an Int32Array");
    }
    auto a = v.As<Napi::Int32Array>();
    return std::vector<llama_token>(a.Data(), a.Data() + a.ElementLength());
}

// A vector as the typed array of its element type (Int32Array, Float32Array).
template <typename T> Napi::TypedArrayOf<T> to_js(Napi::Env env, const std::vector<T> & v) {
    auto a = Napi::TypedArrayOf<T>::New(env, v.size());
    std::copy(v.begin(), v.end(), a.Data());
    return a;
}

// An optional field of a JS options object, or the fallback when it is absent or of another type.
double opt(const Napi::Object & o, const char * key, double fallback) {
    auto v = o.Get(key);
    return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback;
}

bool opt(const Napi::Object & o, const char * key, bool fallback) {
    auto v = o.Get(key);
    return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : fallback;
}

std::string opt(const Napi::Object & o, const char * key, const char * fallback) {
    auto v = o.Get(key);
    return v.IsString() ? v.As<Napi::String>().Utf8Value() : fallback;
}

// A string field that names one of `choices`, or `fallback` (dc_params' default) when it is absent; anything else
// is refused with the names it may take.
template <typename T>
T opt_choice(const Napi::Object &                              o,
             const char *                                      key,
             const char *                                      what,
             T                                                 fallback,
             std::initializer_list<std::pair<const char *, T>> choices) {
    if (!o.Get(key).IsString()) {
        return fallback;
    }
    const std::string name = opt(o, key, "");
    std::string       names;
    size_t            i = 0;
    for (const auto & [n, value] : choices) {
        if (name == n) {
            return value;
        }
        names += (i == 0 ? "" : i + 1 == choices.size() ? " or " : ", ") + std::string(n);
        i++;
    }
    throw Napi::Error::New(o.Env(), "unknown " + std::string(what) + " '" + name + "' (" + names + ")");
}

dc_params to_params(const Napi::Object & o) {
    dc_params p;
    p.algorithm = opt_choice<dc_algorithm>(o, "algorithm", "algorithm", p.algorithm,
                                           {
                                               { "maskgit_plus", dc_algorithm::maskgit_plus },
                                               { "origin",       dc_algorithm::origin       },
                                               { "topk_margin",  dc_algorithm::topk_margin  },
                                               { "entropy",      dc_algorithm::entropy      }
    });
    p.schedule  = opt_choice<dc_schedule>(o, "schedule", "schedule", p.schedule,
                                          {
                                             { "timestep", dc_schedule::timestep },
                                             { "block",    dc_schedule::block    }
    });
    p.cache     = opt_choice<dc_cache>(
        o, "cache", "cache mode", p.cache,
        {
            { "none",   dc_cache::none   },
            { "prefix", dc_cache::prefix },
            { "dual",   dc_cache::dual   }
    });
    p.cache_f16            = opt_choice<bool>(o, "cacheType", "cache type", p.cache_f16,
                                              {
                                       { "f32", false },
                                       { "f16", true  }
    });
    p.steps                = (int32_t) opt(o, "steps", (double) p.steps);
    p.eps                  = opt(o, "eps", p.eps);
    p.block_length         = (int32_t) opt(o, "blockLength", (double) p.block_length);
    p.temperature          = (float) opt(o, "temperature", (double) p.temperature);
    p.top_p                = (float) opt(o, "topP", (double) p.top_p);
    p.top_k                = (int32_t) opt(o, "topK", (double) p.top_k);
    p.seed                 = (uint32_t) opt(o, "seed", (double) p.seed);
    p.alg_temp             = (float) opt(o, "algTemp", (double) p.alg_temp);
    p.confidence_threshold = (float) opt(o, "confidenceThreshold", (double) p.confidence_threshold);
    p.entropy_bound        = (float) opt(o, "entropyBound", (double) p.entropy_bound);
    p.refresh_every_step   = opt(o, "refreshEveryStep", p.refresh_every_step);
    p.eot_penalty          = (float) opt(o, "eotPenalty", (double) p.eot_penalty);
    p.eot_penalty_decay    = (float) opt(o, "eotPenaltyDecay", (double) p.eot_penalty_decay);
    p.early_stop           = opt(o, "earlyStop", p.early_stop);
    p.stop_at_line_end     = opt(o, "stopAtLineEnd", p.stop_at_line_end);
    p.trace_logits         = opt(o, "traceLogits", p.trace_logits);
    p.threads              = (int32_t) opt(o, "threads", (double) p.threads);
    p.reuse_key            = opt(o, "reuseKey", "");
    p.reuse_max_requests   = (int32_t) opt(o, "reuseMaxRequests", (double) p.reuse_max_requests);
    p.reuse_max_changed    = (int32_t) opt(o, "reuseMaxChanged", (double) p.reuse_max_changed);
    p.expand_token         = (llama_token) opt(o, "expandToken", (double) p.expand_token);
    p.delete_token         = (llama_token) opt(o, "deleteToken", (double) p.delete_token);
    return p;
}

// A step as onStep receives it (native.ts NativeStep); the logits trace only when asked for.
Napi::Object to_js(Napi::Env env, const dc_step & s, bool trace) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("step", s.step);
    o.Set("totalSteps", s.total_steps);
    o.Set("positions", to_js(env, s.positions));
    o.Set("tokens", to_js(env, s.tokens));
    o.Set("forwardMs", s.forward_ms);
    o.Set("sampleMs", s.sample_ms);
    o.Set("rows", s.n_rows);
    o.Set("full", s.full);
    o.Set("reused", s.reused);
    o.Set("copiedBytes", (double) s.copied_bytes);
    o.Set("confidences", to_js(env, s.confidences));
    if (trace) {
        o.Set("candidates", to_js(env, s.candidates));
        o.Set("logits", to_js(env, s.logits));
    }
    if (!s.hole_lengths.empty()) {
        o.Set("holeTokens", to_js(env, s.hole_tokens));
        o.Set("holeLengths", to_js(env, s.hole_lengths));
    }
    return o;
}

// A request's result as decode() resolves it (native.ts NativeDecodeResult).
Napi::Object to_js(Napi::Env env, const dc_result & r) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("tokens", to_js(env, r.tokens));
    o.Set("revealStep", to_js(env, r.reveal_step));
    std::vector<int32_t> holes;
    for (const dc_hole & h : r.holes) {
        holes.insert(holes.end(), { h.start, h.length });
    }
    o.Set("holes", to_js(env, holes));
    o.Set("forwardPasses", r.forward_passes);
    o.Set("fullPasses", r.full_passes);
    o.Set("reusedTokens", r.reused_tokens);
    o.Set("totalMs", r.total_ms);
    o.Set("forwardMs", r.forward_ms);
    o.Set("sampleMs", r.sample_ms);
    o.Set("copiedBytes", (double) r.copied_bytes);
    o.Set("computeBytes", (double) r.compute_bytes);
    o.Set("cancelled", r.cancelled);
    return o;
}

class NativeModel;
Napi::FunctionReference g_model_ctor;

// Owns the model and its decoder; `busy` keeps one job at a time, `cancel` stops the running one.
struct ModelState {
    llama_model *                     model = nullptr;
    std::unique_ptr<DiffusionDecoder> decoder;
    std::atomic<bool>                 cancel{ false };
    std::atomic<bool>                 busy{ false };
    bool                              logits_on_gpu = false;  // the output layer runs on a GPU (see below)
    int32_t                           gpu_layers    = 0;  // n_gpu_layers the model was loaded with (fitted for "auto")

    ~ModelState() {
        decoder.reset();
        if (model) {
            llama_model_free(model);
        }
    }
};

// A worker whose JS side is a promise: settled from OnOK (with result()) or OnError, after finish().
// `Worker` is Napi::AsyncWorker or Napi::AsyncProgressQueueWorker<T>.
template <typename Worker> class PromiseWorker : public Worker {
  public:
    explicit PromiseWorker(Napi::Env env) : Worker(env), deferred_(Napi::Promise::Deferred::New(env)) {}

    Napi::Promise promise() { return deferred_.Promise(); }

  protected:
    virtual Napi::Value result() = 0;

    virtual void finish() {}

    void OnOK() override {
        finish();
        deferred_.Resolve(result());
    }

    void OnError(const Napi::Error & e) override {
        finish();
        deferred_.Reject(e.Value());
    }

  private:
    Napi::Promise::Deferred deferred_;
};

// A job on a loaded model (decode, forward): holds the model's state so that a garbage-collected wrapper never
// frees it under the worker, and frees the model for the next job when it ends, whichever way.
template <typename Worker> class JobWorker : public PromiseWorker<Worker> {
  public:
    JobWorker(Napi::Env env, std::shared_ptr<ModelState> state) :
        PromiseWorker<Worker>(env),
        state_(std::move(state)) {}

  protected:
    void finish() override { state_->busy = false; }

    std::shared_ptr<ModelState> state_;
};

// The context the GPU layers are fitted for: what the decoder's cached modes create for a request of the settings'
// size (DiffusionDecoder::kv_context_params), and the device memory to leave free.
struct fit_request {
    int32_t tokens    = 0;  // 0: no fit, the layers as given
    int32_t outputs   = 32;
    int32_t sequences = 1;
    double  margin    = 512.0 * 1024 * 1024;
};

class LoadWorker : public PromiseWorker<Napi::AsyncProgressQueueWorker<float>> {
  public:
    LoadWorker(Napi::Env      env,
               std::string    path,
               int32_t        threads,
               int32_t        gpu_layers,
               fit_request    fit,
               Napi::Function on_progress) :
        PromiseWorker(env),
        path_(std::move(path)),
        threads_(threads),
        gpu_layers_(gpu_layers),
        fit_(fit) {
        if (!on_progress.IsEmpty()) {
            progress_ = Napi::Persistent(on_progress);
        }
    }

    // gpuLayers "auto": llama.cpp's own fit (common/fit.cpp, as llama-server's --fit) loads the model and the context
    // without allocating, measures what each device would hold (weights, KV cache, compute buffer) and lowers the
    // GPU layers until that fits in each device's free memory less the margin. Without a GPU it keeps them all,
    // which then means none.
    void fit_gpu_layers(llama_model_params & mp) {
        tensor_split_.assign(llama_max_devices(), 0.0f);
        overrides_.assign(llama_max_tensor_buft_overrides(), llama_model_tensor_buft_override{ nullptr, nullptr });
        std::vector<size_t>  margins(llama_max_devices(), (size_t) fit_.margin);
        llama_context_params cp =
            DiffusionDecoder::kv_context_params(fit_.tokens, fit_.outputs, fit_.sequences, false, threads_);
        mp.n_gpu_layers = llama_model_default_params().n_gpu_layers;  // the fit changes only defaults
        mp.tensor_split = tensor_split_.data();
        const auto fit  = common_fit_params(path_.c_str(), &mp, &cp, tensor_split_.data(), overrides_.data(),
                                            margins.data(), cp.n_ctx, nullptr, GGML_LOG_LEVEL_ERROR);
        if (fit != COMMON_PARAMS_FIT_STATUS_SUCCESS) {
            mp.n_gpu_layers = 0;  // not even one layer fits, or the fit failed: the CPU
        }
    }

    void Execute(const ExecutionProgress & progress) override {
        llama_model_params mp = llama_model_default_params();
        mp.n_gpu_layers       = gpu_layers_;
        if (fit_.tokens > 0) {
            fit_gpu_layers(mp);
        }
        mp.progress_callback = [](float p, void * data) {
            static_cast<const ExecutionProgress *>(data)->Send(&p, 1);
            return true;
        };
        mp.progress_callback_user_data = const_cast<ExecutionProgress *>(&progress);
        take_llama_log();
        state_        = std::make_unique<ModelState>();
        state_->model = llama_model_load_from_file(path_.c_str(), mp);
        if (!state_->model) {
            const std::string log = take_llama_log();
            SetError("llama.cpp could not load the model" + (log.empty() ? std::string() : ": " + log));
            return;
        }
        if (!llama_model_is_diffusion(state_->model)) {
            SetError("not a diffusion model: llama.cpp treats this architecture as autoregressive");
            return;
        }
        try {
            state_->decoder = std::make_unique<DiffusionDecoder>(state_->model, threads_);
            // llama.cpp offloads layers from the output down: with any GPU layers (negative: all) and a GPU
            // device, the output layer and so the logits are on the GPU.
            for (size_t i = 0; i < ggml_backend_dev_count() && mp.n_gpu_layers != 0; i++) {
                const auto type = ggml_backend_dev_type(ggml_backend_dev_get(i));
                state_->logits_on_gpu |= type == GGML_BACKEND_DEVICE_TYPE_GPU || type == GGML_BACKEND_DEVICE_TYPE_IGPU;
            }
            state_->gpu_layers = state_->logits_on_gpu ? mp.n_gpu_layers : 0;
        } catch (const std::exception & e) {
            SetError(e.what());
        }
    }

    void OnProgress(const float * data, size_t count) override {
        if (!progress_.IsEmpty() && count > 0) {
            progress_.Call({ Napi::Number::New(Env(), data[count - 1]) });
        }
    }

    Napi::Value result() override;

  private:
    Napi::FunctionReference progress_;
    std::string             path_;
    int32_t                 threads_;
    int32_t                 gpu_layers_;
    fit_request             fit_;
    std::vector<float>      tensor_split_;  // the fit's outputs, which the model params point to while loading
    std::vector<llama_model_tensor_buft_override> overrides_;
    std::unique_ptr<ModelState>                   state_;
};

class NativeModel : public Napi::ObjectWrap<NativeModel> {
  public:
    static void Init(Napi::Env env, Napi::Object exports) {
        Napi::Function ctor = DefineClass(env, "NativeModel",
                                          {
                                              InstanceMethod("info", &NativeModel::Info),
                                              InstanceMethod("tokenize", &NativeModel::Tokenize),
                                              InstanceMethod("detokenize", &NativeModel::Detokenize),
                                              InstanceMethod("decode", &NativeModel::Decode),
                                              InstanceMethod("forwardLogits", &NativeModel::ForwardLogits),
                                              InstanceMethod("cancel", &NativeModel::Cancel),
                                              InstanceMethod("dispose", &NativeModel::Dispose),
                                          });
        g_model_ctor        = Napi::Persistent(ctor);
        exports.Set("NativeModel", ctor);
    }

    explicit NativeModel(const Napi::CallbackInfo & info) : Napi::ObjectWrap<NativeModel>(info) {
        if (info.Length() != 1 || !info[0].IsExternal()) {
            throw Napi::TypeError::New(info.Env(), "NativeModel is created by loadModel()");
        }
        state_.reset(info[0].As<Napi::External<ModelState>>().Data());
    }

    ModelState & state(Napi::Env env) {
        if (!state_) {
            throw Napi::Error::New(env, "the model has been disposed");
        }
        return *state_;
    }

    // Marks the model busy for one job; the job's worker clears it.
    void acquire(Napi::Env env) {
        if (state(env).busy.exchange(true)) {
            throw Napi::Error::New(env, "the model is busy with another request");
        }
        state_->cancel = false;
    }

  private:
    Napi::Value Info(const Napi::CallbackInfo & info) {
        Napi::Env           env   = info.Env();
        const llama_model * model = state(env).model;
        const llama_vocab * vocab = llama_model_get_vocab(model);
        Napi::Object        o     = Napi::Object::New(env);
        char                buf[256];
        llama_model_meta_val_str(model, "general.architecture", buf, sizeof(buf));
        o.Set("architecture", buf);
        llama_model_desc(model, buf, sizeof(buf));
        o.Set("description", buf);
        o.Set("nVocab", llama_vocab_n_tokens(vocab));
        o.Set("nCtxTrain", llama_model_n_ctx_train(model));
        o.Set("shiftLogits", dc_model_shift_logits(model));
        o.Set("mask", llama_vocab_mask(vocab));
        o.Set("bos", llama_vocab_bos(vocab));
        o.Set("eos", llama_vocab_eos(vocab));
        o.Set("addBos", llama_vocab_get_add_bos(vocab));
        o.Set("endTokens", to_js(env, state_->decoder->end_tokens()));
        o.Set("expandToken", state_->decoder->expand_token());
        o.Set("deleteToken", state_->decoder->delete_token());
        const char * tmpl = llama_model_chat_template(model, nullptr);
        o.Set("chatTemplate", tmpl ? Napi::Value(Napi::String::New(env, tmpl)) : env.Null());
        o.Set("sizeBytes", (double) llama_model_size(model));
        // Offloaded layers as llama.cpp counts them: the repeating layers, then the output layer (n_layer + 1).
        const int32_t n_layer = llama_model_n_layer(model);
        const int32_t ngl     = state_->gpu_layers;
        o.Set("nLayer", n_layer);
        o.Set("gpuLayers", ngl < 0 ? n_layer + 1 : std::min(ngl, n_layer + 1));
        return o;
    }

    Napi::Value Tokenize(const Napi::CallbackInfo & info) {
        Napi::Env           env   = info.Env();
        const llama_vocab * vocab = llama_model_get_vocab(state(env).model);
        if (!info[0].IsString()) {
            throw Napi::TypeError::New(env, "tokenize(text, addSpecial, parseSpecial): text must be a string");
        }
        const std::string        text          = info[0].As<Napi::String>().Utf8Value();
        const bool               add_special   = info[1].ToBoolean();
        const bool               parse_special = info[2].ToBoolean();
        std::vector<llama_token> out(text.size() + 4);
        int32_t n = llama_tokenize(vocab, text.data(), (int32_t) text.size(), out.data(), (int32_t) out.size(),
                                   add_special, parse_special);
        if (n < 0) {
            out.resize(-n);
            n = llama_tokenize(vocab, text.data(), (int32_t) text.size(), out.data(), (int32_t) out.size(), add_special,
                               parse_special);
        }
        out.resize(std::max(n, 0));
        return to_js(env, out);
    }

    Napi::Value Detokenize(const Napi::CallbackInfo & info) {
        Napi::Env                      env            = info.Env();
        const llama_vocab *            vocab          = llama_model_get_vocab(state(env).model);
        const std::vector<llama_token> tokens         = to_tokens(info[0]);
        const bool                     render_special = info[1].ToBoolean();
        for (llama_token t : tokens) {
            if (t < 0 || t >= llama_vocab_n_tokens(vocab)) {
                throw Napi::RangeError::New(env, "token id " + std::to_string(t) + " is outside the vocabulary");
            }
        }
        std::string out(tokens.size() * 8 + 16, '\0');
        int32_t n = llama_detokenize(vocab, tokens.data(), (int32_t) tokens.size(), out.data(), (int32_t) out.size(),
                                     false, render_special);
        if (n < 0) {
            out.resize(-n);
            n = llama_detokenize(vocab, tokens.data(), (int32_t) tokens.size(), out.data(), (int32_t) out.size(), false,
                                 render_special);
        }
        out.resize(std::max(n, 0));
        return Napi::String::New(env, out);
    }

    Napi::Value Decode(const Napi::CallbackInfo & info);
    Napi::Value ForwardLogits(const Napi::CallbackInfo & info);

    Napi::Value Cancel(const Napi::CallbackInfo & info) {
        if (state_) {
            state_->cancel = true;
        }
        return info.Env().Undefined();
    }

    Napi::Value Dispose(const Napi::CallbackInfo & info) {
        if (state_ && state_->busy) {
            throw Napi::Error::New(info.Env(), "cannot dispose the model while a request runs; cancel it first");
        }
        state_.reset();
        return info.Env().Undefined();
    }

    // Shared with running jobs, so a garbage-collected wrapper never frees a model under a worker.
    std::shared_ptr<ModelState> state_;
};

Napi::Value LoadWorker::result() {
    return g_model_ctor.New({ Napi::External<ModelState>::New(Env(), state_.release()) });
}

class DecodeWorker : public JobWorker<Napi::AsyncProgressQueueWorker<dc_step>> {
  public:
    DecodeWorker(Napi::Env                   env,
                 std::shared_ptr<ModelState> state,
                 std::vector<llama_token>    tokens,
                 std::vector<dc_hole>        holes,
                 dc_params                   params,
                 Napi::Function              on_step) :
        JobWorker(env, std::move(state)),
        tokens_(std::move(tokens)),
        holes_(std::move(holes)),
        params_(params) {
        if (!on_step.IsEmpty()) {
            on_step_ = Napi::Persistent(on_step);
        }
    }

    void Execute(const ExecutionProgress & progress) override {
        try {
            result_ = state_->decoder->run(
                std::move(tokens_), holes_, params_,
                [&](dc_step && s) {
                    if (!on_step_.IsEmpty()) {
                        progress.Send(&s, 1);
                    }
                },
                state_->cancel);
        } catch (const std::exception & e) {
            SetError(e.what());
        }
    }

    void OnProgress(const dc_step * steps, size_t count) override {
        Napi::Env env = Env();
        for (size_t i = 0; i < count; i++) {
            on_step_.Call({ to_js(env, steps[i], params_.trace_logits) });
        }
    }

    Napi::Value result() override { return to_js(Env(), result_); }

  private:
    Napi::FunctionReference  on_step_;
    std::vector<llama_token> tokens_;
    std::vector<dc_hole>     holes_;
    dc_params                params_;
    dc_result                result_;
};

// decode(tokens: Int32Array, holes: Int32Array [start, length, maxLength]*, params, onStep?) -> Promise<result>
Napi::Value NativeModel::Decode(const Napi::CallbackInfo & info) {
    Napi::Env                env    = info.Env();
    std::vector<llama_token> tokens = to_tokens(info[0]);
    std::vector<int32_t>     flat   = to_tokens(info[1]);
    if (flat.size() % 3 != 0) {
        throw Napi::TypeError::New(env, "holes must hold (start, length, maxLength) triples");
    }
    std::vector<dc_hole> holes;
    for (size_t i = 0; i < flat.size(); i += 3) {
        holes.push_back({ flat[i], flat[i + 1], flat[i + 2] });
    }
    if (!info[2].IsObject()) {
        throw Napi::TypeError::New(env, "decode params must be an object");
    }
    dc_params         params     = to_params(info[2].As<Napi::Object>());
    // deviceReductions: true, false, or "auto" (absent): on where the logits are on a GPU, where they save the
    // device-to-host copy of the rows; on the CPU backend the reductions' ggml ops (a single-threaded argmax
    // among them) cost more than the host scan of the rows they replace (docs/speed.md).
    const Napi::Value reductions = info[2].As<Napi::Object>().Get("deviceReductions");
    params.device_reductions = reductions.IsBoolean() ? reductions.As<Napi::Boolean>().Value() : state_->logits_on_gpu;
    Napi::Function on_step   = info[3].IsFunction() ? info[3].As<Napi::Function>() : Napi::Function();
    acquire(env);
    auto * worker = new DecodeWorker(env, state_, std::move(tokens), std::move(holes), params, on_step);
    worker->Queue();
    return worker->promise();
}

class ForwardWorker : public JobWorker<Napi::AsyncWorker> {
  public:
    ForwardWorker(Napi::Env env, std::shared_ptr<ModelState> state, std::vector<llama_token> tokens) :
        JobWorker(env, std::move(state)),
        tokens_(std::move(tokens)) {}

    void Execute() override {
        try {
            logits_ = state_->decoder->forward_all(tokens_, state_->cancel);
        } catch (const std::exception & e) {
            SetError(e.what());
        }
    }

    Napi::Value result() override { return to_js(Env(), logits_); }

  private:
    std::vector<llama_token> tokens_;
    std::vector<float>       logits_;
};

Napi::Value NativeModel::ForwardLogits(const Napi::CallbackInfo & info) {
    Napi::Env                env    = info.Env();
    std::vector<llama_token> tokens = to_tokens(info[0]);
    acquire(env);
    auto * worker = new ForwardWorker(env, state_, std::move(tokens));
    worker->Queue();
    return worker->promise();
}

// loadModel(path, { threads, gpuLayers, fitContext? }, onProgress?) -> Promise<NativeModel>
// gpuLayers: a count (negative: all), or "auto" with fitContext: as many as fit (LoadWorker::fit_gpu_layers).
Napi::Value LoadModel(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!info[0].IsString()) {
        throw Napi::TypeError::New(env, "loadModel(path, options): path must be a string");
    }
    Napi::Object  o       = info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
    const int32_t threads = (int32_t) opt(o, "threads", 0.0);
    if (threads < 1 || threads > 512) {
        throw Napi::RangeError::New(env, "loadModel: threads must be from 1 to 512");
    }
    fit_request   fit;
    const auto    layers      = o.Get("gpuLayers");
    const bool    auto_layers = layers.IsString() && layers.As<Napi::String>().Utf8Value() == "auto";
    const int32_t gpu_layers  = auto_layers ? 0 : (int32_t) opt(o, "gpuLayers", 0.0);
    if (auto_layers) {
        const auto c = o.Get("fitContext");
        if (!c.IsObject()) {
            throw Napi::TypeError::New(env,
                                       "loadModel: gpuLayers \"auto\" needs fitContext { tokens, outputs, sequences }");
        }
        const Napi::Object co = c.As<Napi::Object>();
        fit.tokens            = (int32_t) opt(co, "tokens", 0.0);
        fit.outputs           = (int32_t) opt(co, "outputs", 32.0);
        fit.sequences         = (int32_t) opt(co, "sequences", 1.0);
        fit.margin            = opt(co, "marginBytes", fit.margin);
        if (fit.tokens < 1 || fit.outputs < 1 || fit.sequences < 1 || fit.sequences > 64 || fit.margin < 0) {
            throw Napi::RangeError::New(env, "loadModel: fitContext needs tokens, outputs and sequences of at least 1");
        }
    }
    Napi::Function progress = info[2].IsFunction() ? info[2].As<Napi::Function>() : Napi::Function();
    auto * worker = new LoadWorker(env, info[0].As<Napi::String>().Utf8Value(), threads, gpu_layers, fit, progress);
    worker->Queue();
    return worker->promise();
}

// llama.cpp's quantizer (llama_model_quantize) on a worker thread. Progress: the fraction of tensors written, after
// each tensor (native/patches/0003); cancel: the flag the returned handle's cancel() sets, read after each tensor.
class QuantizeWorker : public PromiseWorker<Napi::AsyncProgressQueueWorker<float>> {
  public:
    QuantizeWorker(Napi::Env                          env,
                   std::string                        input,
                   std::string                        output,
                   llama_model_quantize_params        params,
                   std::shared_ptr<std::atomic<bool>> cancel,
                   Napi::Function                     on_progress) :
        PromiseWorker(env),
        input_(std::move(input)),
        output_(std::move(output)),
        params_(params),
        cancel_(std::move(cancel)) {
        if (!on_progress.IsEmpty()) {
            progress_ = Napi::Persistent(on_progress);
        }
    }

    void Execute(const ExecutionProgress & progress) override {
        sender_                   = &progress;
        params_.progress_callback = [](float done, void * data) {
            auto * self = static_cast<QuantizeWorker *>(data);
            if (*self->cancel_) {
                return false;
            }
            self->sender_->Send(&done, 1);
            return true;
        };
        params_.progress_callback_user_data = this;
        take_llama_log();
        if (llama_model_quantize(input_.c_str(), output_.c_str(), &params_) != 0) {
            const std::string log = take_llama_log();
            SetError(*cancel_ ? std::string("the quantization was cancelled") :
                                "llama.cpp could not quantize " + input_ + (log.empty() ? std::string() : ": " + log));
        }
    }

    void OnProgress(const float * data, size_t count) override {
        if (!progress_.IsEmpty()) {
            for (size_t i = 0; i < count; i++) {
                progress_.Call({ Napi::Number::New(Env(), data[i]) });
            }
        }
    }

    Napi::Value result() override { return Env().Undefined(); }

  private:
    Napi::FunctionReference            progress_;
    std::string                        input_;
    std::string                        output_;
    llama_model_quantize_params        params_;
    std::shared_ptr<std::atomic<bool>> cancel_;
    const ExecutionProgress *          sender_ = nullptr;
};

// quantize(input, output, { ftype, threads, bufferBytes }, onProgress?) -> { done: Promise<void>, cancel(): void }.
// `ftype` is a llama_ftype (server/src/runtime/quantize.ts names them); `bufferBytes` bounds the rows llama.cpp holds
// at once (its default, 8 GiB, would hold a 7B model's whole embedding as floats); llama.cpp's log says why a
// quantization failed.
Napi::Value Quantize(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!info[0].IsString() || !info[1].IsString() || !info[2].IsObject()) {
        throw Napi::TypeError::New(
            env, "quantize(input, output, { ftype, threads, bufferBytes }, onProgress?): input and output are paths");
    }
    Napi::Object                o      = info[2].As<Napi::Object>();
    llama_model_quantize_params params = llama_model_quantize_default_params();
    params.ftype                       = (llama_ftype) opt(o, "ftype", -1.0);
    params.nthread                     = (int32_t) opt(o, "threads", 0.0);
    params.max_buf_size                = (size_t) opt(o, "bufferBytes", 0.0);
    if (params.nthread < 1 || params.nthread > 512) {
        throw Napi::RangeError::New(env, "quantize: threads must be from 1 to 512");
    }
    auto           cancel   = std::make_shared<std::atomic<bool>>(false);
    Napi::Function progress = info[3].IsFunction() ? info[3].As<Napi::Function>() : Napi::Function();
    auto *         worker   = new QuantizeWorker(env, info[0].As<Napi::String>().Utf8Value(),
                                                 info[1].As<Napi::String>().Utf8Value(), params, cancel, progress);
    worker->Queue();
    Napi::Object handle = Napi::Object::New(env);
    handle.Set("done", worker->promise());
    handle.Set("cancel", Napi::Function::New(env, [cancel](const Napi::CallbackInfo & info) {
                   *cancel = true;
                   return info.Env().Undefined();
               }));
    return handle;
}

// Bytes a tensor of `type` with rows of `ne0` elements takes; null where ggml would reject the shape.
Napi::Value TensorBytes(const Napi::CallbackInfo & info) {
    Napi::Env     env   = info.Env();
    const int64_t type  = info[0].As<Napi::Number>().Int64Value();
    const int64_t ne0   = info[1].As<Napi::Number>().Int64Value();
    const double  nrows = info[2].As<Napi::Number>().DoubleValue();
    if (type < 0 || type >= GGML_TYPE_COUNT || ggml_blck_size((ggml_type) type) == 0 ||
        ggml_type_size((ggml_type) type) == 0 || ne0 < 0 || ne0 % ggml_blck_size((ggml_type) type) != 0) {
        return env.Null();
    }
    return Napi::Number::New(env, (double) ggml_row_size((ggml_type) type, ne0) * nrows);
}

// The compute devices this build can use, e.g. [{ name: "CPU", type: "cpu" }, { name: "CUDA0", type: "gpu" }].
Napi::Value Devices(const Napi::CallbackInfo & info) {
    Napi::Env   env = info.Env();
    Napi::Array out = Napi::Array::New(env);
    for (size_t i = 0; i < ggml_backend_dev_count(); i++) {
        ggml_backend_dev_t dev = ggml_backend_dev_get(i);
        Napi::Object       o   = Napi::Object::New(env);
        o.Set("name", ggml_backend_dev_name(dev));
        o.Set("description", ggml_backend_dev_description(dev));
        const auto type = ggml_backend_dev_type(dev);
        o.Set("type", type == GGML_BACKEND_DEVICE_TYPE_CPU                                          ? "cpu" :
                      type == GGML_BACKEND_DEVICE_TYPE_GPU || type == GGML_BACKEND_DEVICE_TYPE_IGPU ? "gpu" :
                                                                                                      "other");
        o.Set("integrated", type == GGML_BACKEND_DEVICE_TYPE_IGPU);
        size_t free = 0, total = 0;
        ggml_backend_dev_memory(dev, &free, &total);
        o.Set("memoryFree", (double) free);
        o.Set("memoryTotal", (double) total);
        out.Set((uint32_t) i, o);
    }
    return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
    llama_log_set(on_llama_log, nullptr);
    llama_backend_init();
    NativeModel::Init(env, exports);
    exports.Set("loadModel", Napi::Function::New(env, LoadModel));
    exports.Set("quantize", Napi::Function::New(env, Quantize));
    exports.Set("tensorBytes", Napi::Function::New(env, TensorBytes));
    exports.Set("devices", Napi::Function::New(env, Devices));
    exports.Set("reuseSlots", DiffusionDecoder::kReuseSlots);
    // llama.cpp's CPU features line; test/native/build-config.test.ts checks the build's flags with it.
    exports.Set("systemInfo", Napi::Function::New(env, [](const Napi::CallbackInfo & info) {
                    return Napi::String::New(info.Env(), llama_print_system_info());
                }));
    return exports;
}

}  // namespace

NODE_API_MODULE(dream_native, Init)
