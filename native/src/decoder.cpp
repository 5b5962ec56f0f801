#include "decoder.h"

#include "llama-ext.h"  // llama_get_memory_breakdown

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <unordered_map>

namespace {

using clock_type = std::chrono::steady_clock;

double ms_since(clock_type::time_point t0) {
    return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}

bool abort_requested(void * data) {
    auto * flag = *static_cast<const std::atomic<bool> **>(data);
    return flag != nullptr && flag->load();
}

std::string model_arch(const llama_model * model) {
    char buf[64];
    if (llama_model_meta_val_str(model, "general.architecture", buf, sizeof(buf)) < 0) {
        return "";
    }
    return buf;
}

// A special token the GGUF names by a metadata key (our converter and train/export.py write them), else the control
// token with that text; LLAMA_TOKEN_NULL when there is neither.
llama_token declared_token(const llama_model * model, const char * key, const char * text) {
    const llama_vocab * vocab = llama_model_get_vocab(model);
    const int32_t       n     = llama_vocab_n_tokens(vocab);
    char                buf[32];
    if (llama_model_meta_val_str(model, key, buf, sizeof(buf)) >= 0) {
        char *     end = nullptr;
        const long id  = std::strtol(buf, &end, 10);
        return *end == '\0' && id >= 0 && id < n ? (llama_token) id : LLAMA_TOKEN_NULL;
    }
    for (llama_token t = 0; t < n; t++) {
        if ((llama_vocab_get_attr(vocab, t) & LLAMA_TOKEN_ATTR_CONTROL) &&
            std::strcmp(llama_vocab_get_text(vocab, t), text) == 0) {
            return t;
        }
    }
    return LLAMA_TOKEN_NULL;
}

// A variable-length hole's cap on expansions: each asks for room, and deletes can give room back, so the cap is
// what ends a model that keeps asking and giving back (DreamOn's default budget: twice the maximum length).
int32_t expansion_budget(const dc_hole & h) {
    return 2 * h.max_length;
}

}  // namespace

bool dc_model_shift_logits(const llama_model * model) {
    char buf[16];
    // Dream's converter does not write the key; llama.cpp reads a missing key as true.
    if (llama_model_meta_val_str(model, "diffusion.shift_logits", buf, sizeof(buf)) < 0) {
        return true;
    }
    return std::strcmp(buf, "true") == 0;
}

DiffusionDecoder::DiffusionDecoder(llama_model * model, int32_t n_threads) :
    model_(model),
    vocab_(llama_model_get_vocab(model)),
    n_threads_(n_threads),
    threads_now_(n_threads),
    n_vocab_(llama_vocab_n_tokens(vocab_)),
    shift_(dc_model_shift_logits(model)),
    mask_(llama_vocab_mask(vocab_)),
    sampler_(n_vocab_) {
    const std::string arch = model_arch(model);
    kv_supported_          = arch == "dream" || arch == "llada";
    for (llama_token t = 0; t < n_vocab_; t++) {
        if (llama_vocab_is_eog(vocab_, t) || t == llama_vocab_pad(vocab_)) {
            end_tokens_.push_back(t);
        }
    }
    expand_ = declared_token(model, "diffusion.expand_token_id", "<|expand|>");
    delete_ = declared_token(model, "diffusion.delete_token_id", "<|delete|>");
    if (expand_ != LLAMA_TOKEN_NULL && delete_ == LLAMA_TOKEN_NULL) {
        delete_ = llama_vocab_eos(vocab_);
    }
}

DiffusionDecoder::~DiffusionDecoder() {
    exact_.close();
    cached_.close();
}

void DiffusionDecoder::sequence_context::close() {
    if (ctx) {
        llama_batch_free(batch);
        llama_free(ctx);
        ctx = nullptr;
    }
}

// Context sizes in steps of 256 tokens, so that a slightly longer request reuses the context.
static int32_t capacity_for(int32_t n_tokens) {
    return ((n_tokens + 255) / 256) * 256;
}

// Output rows in steps of 32 (the default block), so that requests with slightly different holes reuse the context.
static int32_t outputs_for(int32_t n_outputs) {
    return ((std::max(n_outputs, 1) + 31) / 32) * 32;
}

// What both contexts (exact and cached) share: non-causal decoding runs the whole sequence as one
// micro-batch, so n_ubatch must cover it; flash attention off for exact logits. n_outputs_max bounds the output
// rows: llama.cpp reserves its compute buffer for that many logits rows (and, with the device reductions, for
// their intermediate copies), so a bound of the step's rows, not the sequence's, keeps it small (on a GPU, VRAM).
static llama_context_params sequence_context_params(int32_t cap, int32_t n_outputs, int32_t n_threads) {
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx                = cap;
    cp.n_batch              = cap;
    cp.n_ubatch             = cap;
    cp.n_outputs_max        = std::min(cap, outputs_for(n_outputs));
    cp.n_seq_max            = 1;
    cp.n_threads            = n_threads;
    cp.n_threads_batch      = n_threads;
    cp.flash_attn_type      = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.no_perf              = true;
    return cp;
}

void DiffusionDecoder::open(sequence_context & sc, const llama_context_params & cp) {
    sc.close();
    sc.ctx = llama_init_from_model(model_, cp);
    if (!sc.ctx) {
        throw dc_error(std::string("could not create a ") + sc.name + " for " + std::to_string(cp.n_ctx) +
                       " tokens (out of memory?)");
    }
    sc.capacity = (int32_t) cp.n_ctx;
    sc.outputs  = (int32_t) cp.n_outputs_max;
    sc.reduce   = false;
    sc.used     = false;
    sc.batch    = llama_batch_init(sc.capacity, 0, 1);
    llama_set_abort_callback(sc.ctx, abort_requested, &cancel_);
}

bool DiffusionDecoder::decode(sequence_context &               sc,
                              const std::vector<llama_token> & tokens,
                              int32_t                          r0,
                              int32_t                          r1,
                              const std::vector<int32_t> *     rows,
                              bool                             reduce,
                              const std::atomic<bool> &        cancel,
                              llama_seq_id                     seq) {
    const int32_t m = r1 - r0;
    if (llama_n_threads(sc.ctx) != threads_now_) {
        llama_set_n_threads(sc.ctx, threads_now_, threads_now_);
    }
    if (reduce != sc.reduce) {
        throw dc_error(std::string("the ") + sc.name + " was not made for this batch's reductions");  // ensure_*
    }
    sc.used = true;
    for (int32_t i = 0; i < m; i++) {
        sc.batch.token[i]     = tokens[r0 + i];
        sc.batch.pos[i]       = r0 + i;
        sc.batch.n_seq_id[i]  = 1;
        sc.batch.seq_id[i][0] = seq;
        sc.batch.logits[i]    = rows ? 0 : 1;
    }
    if (rows) {
        for (int32_t r : *rows) {
            sc.batch.logits[r - r0] = 1;
        }
        if (rows->empty()) {
            sc.batch.logits[m - 1] = 1;
        }
    }
    sc.batch.n_tokens   = m;
    const int64_t n_out = rows ? std::max<int64_t>(1, (int64_t) rows->size()) : m;
    if (n_out > sc.outputs) {
        // llama.cpp would abort the process on more output rows than the context was made for.
        throw dc_error(std::string("a batch asks for ") + std::to_string(n_out) + " output rows, more than the " +
                       sc.name + "'s " + std::to_string(sc.outputs));
    }
    copied_ += n_out * (reduce ? (int64_t) sizeof(llama_diffusion_row) : (int64_t) sizeof(float) * n_vocab_);
    cancel_       = &cancel;
    const int ret = llama_decode(sc.ctx, sc.batch);
    cancel_       = nullptr;
    if (ret != 0) {
        if (cancel.load()) {
            return false;
        }
        throw dc_error("llama_decode failed with code " + std::to_string(ret) + " (" + sc.name + ")");
    }
    // On a GPU backend llama_decode returns once the work is queued, and the first logits read waits for it: wait
    // here, so that a step's forward time holds the device work and its sampling time only host work.
    llama_synchronize(sc.ctx);
    return true;
}

llama_context_params DiffusionDecoder::kv_context_params(int32_t n_tokens,
                                                         int32_t n_outputs,
                                                         int32_t n_seq,
                                                         bool    f16,
                                                         int32_t n_threads) {
    // The refresh decodes the whole sequence, non-causally, as one micro-batch; F32 K/V and flash attention
    // off keep a cached step's logits equal to a full pass's when the tokens are unchanged (F16: ~1e-3 off).
    // Reuse slots are sequences with a K/V stream each (not unified): a batch attends to its own document only.
    const int32_t        cap = capacity_for(n_tokens);
    llama_context_params cp  = sequence_context_params(cap, n_outputs, n_threads);
    cp.n_ctx                 = cap * n_seq;
    cp.n_seq_max             = n_seq;
    cp.n_outputs_max         = std::max<uint32_t>(cp.n_outputs_max, n_seq);
    cp.type_k                = f16 ? GGML_TYPE_F16 : GGML_TYPE_F32;
    cp.type_v                = f16 ? GGML_TYPE_F16 : GGML_TYPE_F32;
    cp.kv_unified            = n_seq == 1;
    cp.diffusion_kv_cache    = true;  // native/patches/0001
    return cp;
}

// A context's device reductions (native/patches/0002) are switched only before its first batch: switching them on
// one that has run corrupted memory on ggml-vulkan (seen on lavapipe: exact mode's context after a pass; the cached
// context in prefix mode with a llada model), so a request that needs the other setting gets a new context. With
// the default "auto" a model's greedy requests all have them (on a GPU) or all not (on the CPU); sampling and traced
// requests are the ones that switch.
void DiffusionDecoder::set_reductions(sequence_context & sc, bool reduce) {
    if (reduce != sc.reduce) {
        llama_set_diffusion_reductions(sc.ctx, reduce);  // another graph: llama.cpp reserves anew
        sc.reduce = reduce;
    }
}

void DiffusionDecoder::ensure_kv_context(int32_t n_tokens, int32_t n_outputs, bool f16, int32_t n_seq, bool reduce) {
    if (cached_.ctx && n_tokens <= cached_.capacity && n_outputs <= cached_.outputs && f16 == cached_.f16 &&
        n_seq == cached_.n_seq && (reduce == cached_.reduce || !cached_.used)) {
        set_reductions(cached_, reduce);
        return;
    }
    const llama_context_params cp = kv_context_params(n_tokens, n_outputs, n_seq, f16, n_threads_);
    open(cached_, cp);
    if (!llama_get_memory(cached_.ctx)) {
        cached_.close();
        throw dc_error("this llama.cpp build has no KV cache for diffusion models (is native/patches/0001 applied?)");
    }
    cached_.capacity = (int32_t) cp.n_ctx / n_seq;
    cached_.n_seq    = n_seq;
    cached_.f16      = f16;
    slots_.assign(n_seq, reuse_slot{});
    set_reductions(cached_, reduce);
}

int32_t DiffusionDecoder::take_slot(const std::string & key) {
    int32_t pick = 0;
    for (int32_t i = 0; i < (int32_t) slots_.size(); i++) {
        if (!key.empty() && slots_[i].key == key) {
            pick = i;
            break;
        }
        if (slots_[i].used < slots_[pick].used) {
            pick = i;
        }
    }
    reuse_slot & s = slots_[pick];
    if (s.key != key || key.empty()) {
        s = reuse_slot{ key };
    }
    s.used = ++clock_;
    return pick;
}

bool DiffusionDecoder::forward_kv(const std::vector<llama_token> & tokens,
                                  int32_t                          r0,
                                  int32_t                          r1,
                                  const std::vector<int32_t> &     rows,
                                  bool                             clear,
                                  bool                             reduce,
                                  const std::atomic<bool> &        cancel) {
    llama_memory_t mem  = llama_get_memory(cached_.ctx);
    reuse_slot &   slot = slots_[seq_];
    // Until the decode below has filled them, the cells of [r0, r1) hold nothing a later request may keep.
    if (clear) {
        slot.cells.clear();
    }
    slot.cells.resize(std::max<size_t>(slot.cells.size(), r1), LLAMA_TOKEN_NULL);
    std::fill(slot.cells.begin() + r0, slot.cells.begin() + r1, LLAMA_TOKEN_NULL);
    if (!llama_memory_seq_rm(mem, seq_, clear ? -1 : r0, clear ? -1 : r1)) {
        throw dc_error("could not remove positions " + std::to_string(r0) + ".." + std::to_string(r1) +
                       " from the cache");
    }
    if (!decode(cached_, tokens, r0, r1, &rows, reduce, cancel, seq_)) {
        slot.cells.clear();
        return false;
    }
    std::copy(tokens.begin() + r0, tokens.begin() + r1, slot.cells.begin() + r0);
    return true;
}

bool DiffusionDecoder::keep_cells(const std::vector<llama_token> & tokens,
                                  int32_t                          lo,
                                  int32_t                          hi,
                                  const dc_params &                p,
                                  std::vector<span> &              spans) {
    reuse_slot &  s = slots_[seq_];
    const int32_t n = (int32_t) tokens.size();
    if (p.reuse_key.empty() || s.cells.empty() || s.reuses >= p.reuse_max_requests) {
        return false;
    }
    std::vector<kept_run> runs = find_runs(tokens, lo, hi, llama_memory_can_shift(llama_get_memory(cached_.ctx)));
    spans                      = plan_spans(runs, n);
    int32_t decoded            = 0;
    for (const span & g : spans) {
        decoded += g.r1 - g.r0;
    }
    const int32_t changed = decoded - (hi + 1 - lo);  // outside the rows the holes need
    if (runs.empty() || s.changed + changed > p.reuse_max_changed) {
        return false;
    }
    // The span holding the holes goes last, so that its rows, which the first step reads, see every other change.
    std::stable_partition(spans.begin(), spans.end(), [&](const span & g) { return !(g.r0 <= lo && lo < g.r1); });
    move_cells(runs, n);
    s.reuses++;
    s.changed += changed;
    return true;
}

std::vector<DiffusionDecoder::kept_run> DiffusionDecoder::find_runs(const std::vector<llama_token> & tokens,
                                                                    int32_t                          lo,
                                                                    int32_t                          hi,
                                                                    bool                             can_shift) const {
    const std::vector<llama_token> & cells = slots_[seq_].cells;
    const int32_t                    n     = (int32_t) tokens.size();
    const int32_t                    n_old = (int32_t) cells.size();
    constexpr int32_t                kGram = 8;   // runs are found by their first kGram tokens ...
    constexpr int32_t                kKeep = 32;  // ... and kept when at least this long (a shorter one would cost a
                                                  // decode call)
    auto                             gram  = [](const llama_token * t) {
        uint64_t h = 1469598103934665603ull;  // FNV-1a
        for (int32_t i = 0; i < kGram; i++) {
            h = (h ^ (uint32_t) t[i]) * 1099511628211ull;
        }
        return h;
    };
    std::unordered_map<uint64_t, std::vector<int32_t>> starts;
    for (int32_t c = 0; c + kGram <= n_old; c++) {
        starts[gram(&cells[c])].push_back(c);
    }

    std::vector<kept_run> runs;
    int32_t               c_min = 0;
    auto                  scan  = [&](int32_t q, int32_t end) {
        while (q + kGram <= end) {
            int32_t c  = -1;
            auto    it = starts.find(gram(&tokens[q]));
            if (it != starts.end()) {
                for (auto at = std::lower_bound(it->second.begin(), it->second.end(), c_min); at != it->second.end();
                     ++at) {
                    if (can_shift || *at == q) {
                        c = *at;
                        break;
                    }
                }
            }
            int32_t len = 0;
            while (c >= 0 && q + len < end && c + len < n_old && tokens[q + len] == cells[c + len]) {
                len++;
            }
            if (len >= kKeep) {
                runs.push_back({ q, c, len });
                c_min = c + len;
                q += len;
            } else {
                q++;
            }
        }
    };
    scan(0, lo);
    scan(hi + 1, n);
    return runs;
}

std::vector<DiffusionDecoder::span> DiffusionDecoder::plan_spans(std::vector<kept_run> & runs, int32_t n) {
    auto gaps = [&]() {
        std::vector<span> g;
        int32_t           at = 0;
        for (const kept_run & r : runs) {
            if (r.p > at) {
                g.push_back({ at, r.p });
            }
            at = r.p + r.len;
        }
        if (at < n) {
            g.push_back({ at, n });
        }
        return g;
    };
    auto inner = [&](const kept_run & r) {
        return r.p > 0 && r.p + r.len < n;
    };  // between two gaps
    std::vector<span> spans;
    for (spans = gaps(); spans.size() > 3; spans = gaps()) {
        auto shortest = runs.end();
        for (auto it = runs.begin(); it != runs.end(); ++it) {
            if (inner(*it) && (shortest == runs.end() || it->len < shortest->len)) {
                shortest = it;
            }
        }
        runs.erase(shortest);
    }
    return spans;
}

void DiffusionDecoder::move_cells(const std::vector<kept_run> & runs, int32_t n) {
    // First out of the way (past any position), then to their places, so that no move lands on cells still waiting
    // for theirs. RoPE is re-applied at the next decode.
    reuse_slot &   s   = slots_[seq_];
    llama_memory_t mem = llama_get_memory(cached_.ctx);
    int32_t        at  = 0;
    for (const kept_run & r : runs) {
        llama_memory_seq_rm(mem, seq_, at, r.c);
        at = r.c + r.len;
    }
    llama_memory_seq_rm(mem, seq_, at, -1);
    constexpr llama_pos kAside = 1 << 28;
    for (const kept_run & r : runs) {
        if (r.p != r.c) {
            llama_memory_seq_add(mem, seq_, r.c, r.c + r.len, kAside);
        }
    }
    std::vector<llama_token> cells(n, LLAMA_TOKEN_NULL);
    for (const kept_run & r : runs) {
        if (r.p != r.c) {
            llama_memory_seq_add(mem, seq_, r.c + kAside, r.c + kAside + r.len, r.p - r.c - kAside);
        }
        std::copy(s.cells.begin() + r.c, s.cells.begin() + r.c + r.len, cells.begin() + r.p);
    }
    s.cells = std::move(cells);
}

void DiffusionDecoder::ensure_context(int32_t n_tokens, int32_t n_outputs, bool reduce) {
    if (!(exact_.ctx && n_tokens <= exact_.capacity && n_outputs <= exact_.outputs &&
          (reduce == exact_.reduce || !exact_.used))) {
        open(exact_, sequence_context_params(capacity_for(n_tokens), n_outputs, n_threads_));
    }
    set_reductions(exact_, reduce);
}

void DiffusionDecoder::check_sequence(const std::vector<llama_token> & tokens) const {
    const int32_t n_train = llama_model_n_ctx_train(model_);
    if (tokens.empty()) {
        throw dc_error("no tokens to evaluate");
    }
    if ((int32_t) tokens.size() > n_train) {
        throw dc_error("the sequence has " + std::to_string(tokens.size()) +
                       " tokens, more than the model's trained context of " + std::to_string(n_train));
    }
    for (llama_token t : tokens) {
        if (t < 0 || t >= n_vocab_) {
            throw dc_error("token id " + std::to_string(t) + " is outside the vocabulary");
        }
    }
}

bool DiffusionDecoder::forward(const std::vector<llama_token> & tokens,
                               int32_t                          n_outputs,
                               const std::vector<int32_t> *     rows,
                               bool                             reduce,
                               const std::atomic<bool> &        cancel) {
    const int32_t n = (int32_t) tokens.size();
    ensure_context(n, n_outputs, reduce);
    return decode(exact_, tokens, 0, n, rows, reduce, cancel);
}

std::vector<float> DiffusionDecoder::forward_all(const std::vector<llama_token> & tokens,
                                                 const std::atomic<bool> &        cancel) {
    check_sequence(tokens);
    threads_now_ = n_threads_;
    if (!forward(tokens, (int32_t) tokens.size(), nullptr, false, cancel)) {
        return {};
    }
    const float * logits = llama_get_logits(exact_.ctx);
    return std::vector<float>(logits, logits + tokens.size() * (size_t) n_vocab_);
}

void DiffusionDecoder::check_params(const dc_params & p) const {
    if (mask_ == LLAMA_TOKEN_NULL) {
        throw dc_error("the model has no mask token");
    }
    if (p.steps < 1) {
        throw dc_error("steps must be at least 1");
    }
    if (p.threads < 0 || p.threads > 512) {
        throw dc_error("threads must be 0 (the model's) or from 1 to 512");
    }
    if (p.schedule == dc_schedule::block && p.block_length < 1) {
        throw dc_error("block_length must be at least 1");
    }
    if (p.algorithm == dc_algorithm::origin && p.confidence_threshold > 0) {
        throw dc_error("confidence_threshold needs a confidence-ordered algorithm, not origin");
    }
    if (!(p.confidence_threshold >= 0) || !(p.entropy_bound >= 0)) {
        throw dc_error("confidence_threshold and entropy_bound must be 0 (off) or positive");
    }
    if (p.algorithm == dc_algorithm::origin && p.entropy_bound > 0) {
        throw dc_error("entropy_bound needs a confidence-ordered algorithm, not origin");
    }
    const bool cached = p.cache != dc_cache::none;
    if (cached && !kv_supported_) {
        throw dc_error("the KV cache modes (prefix, dual) support dream and llada models, not '" + model_arch(model_) +
                       "'");
    }
    if (cached && p.schedule != dc_schedule::block) {
        throw dc_error("the KV cache modes (prefix, dual) decode block by block: use the block schedule");
    }
    if (p.refresh_every_step && !cached) {
        throw dc_error("refresh_every_step needs a KV cache mode (prefix or dual)");
    }
}

std::vector<int32_t> DiffusionDecoder::place_holes(std::vector<llama_token> &   tokens,
                                                   const std::vector<dc_hole> & holes) const {
    const int32_t        n = (int32_t) tokens.size();
    std::vector<int32_t> hole_of(n, -1);
    for (size_t h = 0; h < holes.size(); h++) {
        const dc_hole & hole = holes[h];
        if (hole.length < 1 || hole.start < 0 || hole.start + hole.length > n) {
            throw dc_error("hole " + std::to_string(h) + " lies outside the sequence");
        }
        if (shift_ && hole.start == 0) {
            throw dc_error("this model reads position p's logits from row p - 1: a hole cannot start the sequence");
        }
        for (int32_t i = hole.start; i < hole.start + hole.length; i++) {
            if (hole_of[i] >= 0) {
                throw dc_error("holes overlap at position " + std::to_string(i));
            }
            hole_of[i] = (int32_t) h;
            tokens[i]  = mask_;
        }
    }
    std::vector<int32_t> gen;
    for (int32_t i = 0; i < n; i++) {
        if (hole_of[i] >= 0) {
            gen.push_back(i);
        }
    }
    if (gen.empty()) {
        throw dc_error("nothing to generate: the request has no hole");
    }
    return gen;
}

DiffusionDecoder::schedule::schedule(const dc_params & p, int32_t n_gen) :
    p(p),
    n_gen(n_gen),
    steps_per_block(p.steps),
    total_steps(p.steps) {
    if (p.schedule == dc_schedule::block) {
        const int32_t n_blocks = (n_gen + p.block_length - 1) / p.block_length;
        steps_per_block        = std::max(1, p.steps / n_blocks);
        total_steps            = n_blocks * steps_per_block;
    }
}

void DiffusionDecoder::schedule::active_masks(int32_t step, request & rq) const {
    rq.active.clear();
    const bool    blocks = p.schedule == dc_schedule::block;
    const int32_t g0     = blocks ? block(step) * p.block_length : 0;
    const int32_t g1     = blocks ? std::min(n_gen, g0 + p.block_length) : n_gen;
    for (int32_t g = g0; g < g1; g++) {
        if (rq.masked[rq.gen[g]]) {
            rq.active.push_back(rq.gen[g]);
        }
    }
    if (blocks && local(step) == 0) {
        rq.block_masks = (int32_t) rq.active.size();
    }
}

bool DiffusionDecoder::schedule::masks_ahead(int32_t step, const request & rq) const {
    if (step + 1 >= total_steps) {
        return false;
    }
    const int32_t g0 = p.schedule == dc_schedule::block ? block(step + 1) * p.block_length : 0;
    for (int32_t g = g0; g < n_gen; g++) {
        if (rq.masked[rq.gen[g]]) {
            return true;
        }
    }
    return false;
}

int32_t DiffusionDecoder::schedule::reveal_count(int32_t  step,
                                                 int32_t  n_active,
                                                 int32_t  block_masks,
                                                 double & p_origin) const {
    if (p.schedule == dc_schedule::timestep) {
        // Dream's time grid: from t to s reveals the share 1 - s/t of the masks left.
        const double t = 1.0 - (double) step / p.steps * (1.0 - p.eps);
        const double s = 1.0 - (double) (step + 1) / p.steps * (1.0 - p.eps);
        p_origin       = step < p.steps - 1 ? 1.0 - s / t : 1.0;
        return step < p.steps - 1 ? (int32_t) std::floor(n_active * (1.0 - s / t)) : n_active;
    }
    // The block's masks spread evenly over its steps; the last step reveals what is left.
    const int32_t base = block_masks / steps_per_block;
    const int32_t rem  = block_masks % steps_per_block;
    const int32_t i    = local(step);
    const int32_t k    = i == steps_per_block - 1 ? n_active : std::min(n_active, base + (i < rem ? 1 : 0));
    p_origin           = (double) k / n_active;
    return k;
}

void DiffusionDecoder::active_rows(request & rq) const {
    rq.rows.clear();
    for (int32_t pos : rq.active) {
        rq.rows.push_back(shift_ ? pos - 1 : pos);
    }
}

bool DiffusionDecoder::refresh_cache(request & rq, dc_step & ev, const std::atomic<bool> & cancel) {
    const int32_t n      = (int32_t) rq.tokens.size();
    ev.n_rows            = n;
    slots_[seq_].reuses  = 0;
    slots_[seq_].changed = 0;
    return forward_kv(rq.tokens, 0, n, rq.rows, true, rq.reduce, cancel);
}

bool DiffusionDecoder::forward_step(request &                 rq,
                                    const schedule &          sched,
                                    int32_t                   step,
                                    const dc_params &         p,
                                    dc_step &                 ev,
                                    int32_t &                 r0,
                                    const std::atomic<bool> & cancel) {
    const int32_t n = (int32_t) rq.tokens.size();
    active_rows(rq);
    r0 = 0;
    if (p.cache == dc_cache::none) {
        ev.n_rows = n;
        return forward(rq.tokens, rq.n_outputs, &rq.rows, rq.reduce, cancel);
    }
    const std::vector<int32_t> & gen     = rq.gen;
    const int32_t                b       = sched.block(step);
    const int32_t                g1      = std::min(sched.n_gen, (b + 1) * p.block_length);
    const int32_t                lo      = gen[b * p.block_length];
    const int32_t                hi      = gen[g1 - 1];
    const bool                   refresh = b != rq.cached_block || p.refresh_every_step;
    const bool                   first   = rq.cached_block < 0;  // the request's first pass
    rq.cached_block                      = b;
    if (refresh && first && !p.refresh_every_step &&
        keep_cells(rq.tokens, shift_ ? gen.front() - 1 : gen.front(), gen.back(), p, rq.spans)) {
        // The request's first block, with the cells of its document's last request: re-decode what changed,
        // the holes' span last (its rows are this step's).
        bool ok = true;
        for (size_t i = 0; ok && i < rq.spans.size(); i++) {
            const bool holes = i + 1 == rq.spans.size();
            ok = forward_kv(rq.tokens, rq.spans[i].r0, rq.spans[i].r1, holes ? rq.rows : std::vector<int32_t>{}, false,
                            rq.reduce, cancel);
            ev.n_rows += rq.spans[i].r1 - rq.spans[i].r0;
        }
        r0                   = rq.spans.back().r0;
        ev.full              = false;
        ev.reused            = true;
        rq.res.reused_tokens = n - ev.n_rows;
        return ok;
    }
    if (refresh && !p.refresh_every_step) {
        // A new block: one full pass refreshes the cache (prefix and suffix) and gives this step's rows.
        return refresh_cache(rq, ev, cancel);
    }
    bool ok = true;
    if (refresh) {
        ok = forward_kv(rq.tokens, 0, n, {}, true, rq.reduce, cancel);  // test mode: a fresh cache every step
        rq.res.full_passes++;
    }
    // Re-decode the block (from the row before it for Dream: that row reads the block's tokens) and, in prefix
    // mode, everything after it, against the cached cells of the rest. With the device reductions, output rows
    // for every position of the block, revealed or not: the step's graph then keeps one shape through the block,
    // and llama.cpp reuses it (the CUDA backend its captured CUDA graph) instead of building a new one for each
    // count of masks left; a row more costs its share of the output head and 20 bytes. Without them a row is
    // n_vocab floats to compute, copy and scan on the host, and only the masked rows are asked for (measured on
    // the CPU with a 151,936-token vocabulary, the extra rows cost more than the graph reuse saves).
    if (rq.reduce) {
        rq.rows.clear();
        for (int32_t g = b * p.block_length; g < g1; g++) {
            rq.rows.push_back(shift_ ? gen[g] - 1 : gen[g]);
        }
    }
    r0               = shift_ ? lo - 1 : lo;
    const int32_t r1 = p.cache == dc_cache::dual ? hi + 1 : n;
    ev.n_rows        = r1 - r0;
    ev.full          = false;
    return ok && forward_kv(rq.tokens, r0, r1, rq.rows, false, rq.reduce, cancel);
}

void DiffusionDecoder::read_picks(request &         rq,
                                  const dc_params & p,
                                  int32_t           r0,
                                  int32_t           step,
                                  int32_t           total_steps,
                                  double            p_origin,
                                  dc_step &         ev) {
    const bool      need_entropy = p.entropy_bound > 0;
    const double    steps_frac   = (double) step / total_steps;
    const float     penalty = p.eot_penalty * (float) std::pow(std::max(0.0, 1.0 - steps_frac), p.eot_penalty_decay);
    llama_context * ctx     = p.cache != dc_cache::none ? cached_.ctx : exact_.ctx;
    rq.picks.clear();
    rq.chosen.clear();
    for (int32_t pos : rq.active) {
        if (p.algorithm == dc_algorithm::origin &&
            std::uniform_real_distribution<double>(0.0, 1.0)(rq.rng) >= p_origin) {
            rq.picks.push_back({ mask_, 0 });
            continue;
        }
        const int32_t r = shift_ ? pos - 1 : pos;
        if (rq.reduce) {
            llama_diffusion_row d;
            if (!llama_get_diffusion_row_ith(ctx, r - r0, &d)) {
                throw dc_error("llama.cpp returned no reductions for row " + std::to_string(r));
            }
            rq.picks.push_back(dc_greedy_pick(p.algorithm, d.id, d.max, d.second, d.z, d.s,
                                              need_entropy || p.algorithm == dc_algorithm::entropy));
        } else {
            const float * src = llama_get_logits_ith(ctx, r - r0);
            if (!src) {
                throw dc_error("llama.cpp returned no logits for row " + std::to_string(r));
            }
            if (p.trace_logits) {
                ev.candidates.push_back(pos);
                ev.logits.insert(ev.logits.end(), src, src + n_vocab_);
            }
            // A variable-length hole with no room left cannot ask for more (DreamOn pushes the logit down by 1e9).
            const bool no_expand = !rq.no_expand.empty() && rq.no_expand[rq.picks.size()];
            if (penalty == 0.0f && p.temperature <= 0.0f && !no_expand) {
                // Greedy reads the row in place (sample() writes only when it applies a temperature).
                rq.picks.push_back(sampler_.sample(const_cast<float *>(src), p, need_entropy, rq.rng));
            } else {
                rq.row.assign(src, src + n_vocab_);
                for (llama_token t : end_tokens_) {
                    rq.row[t] -= penalty;
                }
                if (no_expand) {
                    rq.row[rq.expand] -= 1e9f;
                }
                rq.picks.push_back(sampler_.sample(rq.row.data(), p, need_entropy, rq.rng));
            }
        }
        if (p.algorithm == dc_algorithm::origin) {
            rq.chosen.push_back((int32_t) rq.picks.size() - 1);  // origin reveals every place its draw let through
        }
    }
}

void DiffusionDecoder::choose(request & rq, const dc_params & p, int32_t k) {
    const int32_t        n_active = (int32_t) rq.active.size();
    std::vector<int32_t> idx(n_active);
    std::iota(idx.begin(), idx.end(), 0);
    if (p.alg_temp > 0) {
        // Drawing k without replacement from softmax(conf / alg_temp) == top-k of Gumbel-perturbed keys.
        std::vector<double> key(n_active);
        for (int32_t i = 0; i < n_active; i++) {
            const double u = std::uniform_real_distribution<double>(1e-20, 1.0)(rq.rng);
            key[i]         = rq.picks[i].confidence / p.alg_temp - std::log(-std::log(u));
        }
        std::stable_sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) { return key[a] > key[b]; });
    } else {
        // Most confident first; ties go to the earlier position.
        std::stable_sort(idx.begin(), idx.end(),
                         [&](int32_t a, int32_t b) { return rq.picks[a].confidence > rq.picks[b].confidence; });
    }
    if (p.confidence_threshold > 0) {
        int32_t above = 0;
        for (const dc_pick & c : rq.picks) {
            above += c.confidence > p.confidence_threshold ? 1 : 0;
        }
        k = std::max({ k, above, 1 });
    }
    if (p.entropy_bound > 0) {
        // EB-sampler: in the order above, the longest run whose summed entropy stays within the bound.
        double  sum   = 0;
        int32_t count = 0;
        for (int32_t i : idx) {
            if (sum + rq.picks[i].entropy > p.entropy_bound) {
                break;
            }
            sum += rq.picks[i].entropy;
            count++;
        }
        k = std::max({ k, count, 1 });
    }
    rq.chosen.assign(idx.begin(), idx.begin() + std::min(k, n_active));
}

void DiffusionDecoder::reveal(request &   rq,
                              int32_t     pos,
                              llama_token token,
                              float       confidence,
                              int32_t     step,
                              dc_step &   ev) {
    rq.tokens[pos]          = token;
    rq.masked[pos]          = 0;
    rq.res.reveal_step[pos] = step;
    ev.positions.push_back(pos);
    ev.tokens.push_back(token);
    ev.confidences.push_back(confidence);
    rq.n_masked--;
}

void DiffusionDecoder::fill_rest(request &       rq,
                                 const dc_hole & hole,
                                 int32_t         from,
                                 llama_token     fill,
                                 int32_t         step,
                                 dc_step &       ev) {
    for (int32_t i = from; i < hole.start + hole.length; i++) {
        if (rq.masked[i]) {
            reveal(rq, i, fill, std::numeric_limits<float>::quiet_NaN(), step, ev);
        }
    }
}

void DiffusionDecoder::stop_at_end(request & rq, const std::vector<dc_hole> & holes, int32_t step, dc_step & ev) {
    for (const dc_hole & hole : holes) {
        for (int32_t i = hole.start; i < hole.start + hole.length; i++) {
            if (!rq.masked[i] && std::find(end_tokens_.begin(), end_tokens_.end(), rq.tokens[i]) != end_tokens_.end()) {
                fill_rest(rq, hole, i + 1, rq.tokens[i], step, ev);
                break;
            }
        }
    }
}

bool DiffusionDecoder::breaks_line(llama_token t) {
    if (line_breaks_.empty()) {
        line_breaks_.assign(n_vocab_, 0);
        std::vector<char> piece(256);
        for (llama_token v = 0; v < n_vocab_; v++) {
            int32_t n = llama_token_to_piece(vocab_, v, piece.data(), (int32_t) piece.size(), 0, false);
            if (n < 0) {  // the piece is -n bytes long
                piece.resize(-n);
                n = llama_token_to_piece(vocab_, v, piece.data(), (int32_t) piece.size(), 0, false);
            }
            const auto end  = piece.begin() + std::max<int32_t>(0, n);
            line_breaks_[v] = std::find_if(piece.begin(), end, [](char c) { return c == '\n' || c == '\r'; }) != end;
        }
    }
    return line_breaks_[t] != 0;
}

void DiffusionDecoder::stop_at_line_end(request & rq, int32_t step, dc_step & ev) {
    if (end_tokens_.empty()) {
        return;  // no token to fill with: the hole runs to its end
    }
    for (const dc_hole & hole : rq.holes) {
        const int32_t end = hole.start + hole.length;
        int32_t       i   = hole.start;
        while (i < end && !rq.masked[i] && !breaks_line(rq.tokens[i])) {
            i++;
        }
        // The hole's text up to its line break is final (revealed places never change): what follows is cut.
        if (i < end && !rq.masked[i]) {
            fill_rest(rq, hole, i + 1, end_tokens_.front(), step, ev);
        }
    }
}

dc_result DiffusionDecoder::run(std::vector<llama_token>                tokens,
                                const std::vector<dc_hole> &            holes,
                                const dc_params &                       p,
                                const std::function<void(dc_step &&)> & on_step,
                                const std::atomic<bool> &               cancel) {
    const auto t_start = clock_type::now();
    check_params(p);
    check_sequence(tokens);
    threads_now_ = p.threads > 0 ? p.threads : n_threads_;

    request rq;
    rq.holes     = holes;
    int32_t grow = 0;  // how much longer than now the sequence may get
    for (dc_hole & h : rq.holes) {
        if (h.max_length == 0) {
            h.max_length = h.length;
        }
        if (h.max_length < h.length) {
            throw dc_error("a hole's maximum length (" + std::to_string(h.max_length) + ") is below its length (" +
                           std::to_string(h.length) + ")");
        }
        grow += h.max_length - h.length;
    }
    if (grow > 0) {
        rq.expand = p.expand_token != LLAMA_TOKEN_NULL ? p.expand_token : expand_;
        rq.del    = p.delete_token != LLAMA_TOKEN_NULL ? p.delete_token : delete_;
        if (rq.expand == LLAMA_TOKEN_NULL || rq.del == LLAMA_TOKEN_NULL) {
            throw dc_error(
                "this model has no expand and delete tokens (<|expand|>, <|delete|>): its holes have fixed lengths");
        }
        for (llama_token t : { rq.expand, rq.del }) {
            if (t < 0 || t >= n_vocab_ || t == mask_) {
                throw dc_error("expand and delete tokens must be tokens of the vocabulary other than the mask");
            }
        }
        if (rq.expand == rq.del) {
            throw dc_error("the expand and the delete token must differ");
        }
        if (p.algorithm == dc_algorithm::origin) {
            throw dc_error("variable-length holes need a confidence-ordered algorithm, not origin");
        }
        for (size_t h = 1; h < rq.holes.size(); h++) {
            if (rq.holes[h].start < rq.holes[h - 1].start) {
                throw dc_error("variable-length holes must be given in sequence order");
            }
        }
        const int32_t n_train = llama_model_n_ctx_train(model_);
        if ((int64_t) tokens.size() + grow > n_train) {
            throw dc_error("the holes may grow the sequence to " + std::to_string(tokens.size() + grow) +
                           " tokens, more than the model's trained context of " + std::to_string(n_train) +
                           ": lower their maximum lengths");
        }
    }
    rq.gen          = place_holes(tokens, holes);
    rq.tokens       = std::move(tokens);
    const int32_t n = (int32_t) rq.tokens.size();
    rq.masked.assign(n, 0);
    for (int32_t i : rq.gen) {
        rq.masked[i] = 1;
    }
    rq.n_masked = (int32_t) rq.gen.size();
    rq.res.reveal_step.assign(n, -1);
    rq.rng.seed(p.seed);
    // Greedy over the whole vocabulary needs of a row only its argmax, top two, z and s: llama.cpp computes them
    // where it computed the logits and copies those out instead of n_vocab floats a row (native/patches/0002).
    // Variable-length holes push a full hole's expand logit down on the host: the reductions would hide the runner-up.
    rq.reduce = p.device_reductions && p.temperature <= 0.0f && (p.top_k <= 0 || p.top_k >= n_vocab_) &&
                p.top_p >= 1.0f && p.eot_penalty == 0.0f && !p.trace_logits && rq.expand == LLAMA_TOKEN_NULL;
    if (rq.expand != LLAMA_TOKEN_NULL) {
        run_variable(rq, p, on_step, cancel);
    } else {
        run_fixed(rq, p, on_step, cancel);
    }

    // What the context's compute buffers hold on every device (the reserve llama.cpp made for its largest graph).
    for (const auto & [buft, mb] : llama_get_memory_breakdown(p.cache != dc_cache::none ? cached_.ctx : exact_.ctx)) {
        rq.res.compute_bytes += (int64_t) mb.compute;
    }
    rq.res.tokens   = std::move(rq.tokens);
    rq.res.total_ms = ms_since(t_start);
    return std::move(rq.res);
}

void DiffusionDecoder::run_fixed(request &                               rq,
                                 const dc_params &                       p,
                                 const std::function<void(dc_step &&)> & on_step,
                                 const std::atomic<bool> &               cancel) {
    const int32_t  n = (int32_t) rq.tokens.size();
    const schedule sched(p, (int32_t) rq.gen.size());
    // A step outputs the rows of its active masks (with the reductions, its block's every row): at most a block's.
    rq.n_outputs = p.schedule == dc_schedule::block ? std::min(p.block_length, sched.n_gen) : sched.n_gen;
    rq.res.holes = rq.holes;
    if (p.cache != dc_cache::none) {
        // Reuse slots exist once a request has asked for one; until then the cache holds one sequence.
        ensure_kv_context(n, rq.n_outputs, p.cache_f16, p.reuse_key.empty() && cached_.n_seq == 1 ? 1 : kReuseSlots,
                          rq.reduce);
        seq_ = take_slot(p.reuse_key);
    }

    for (int32_t step = 0; step < sched.total_steps && rq.n_masked > 0; step++) {
        if (cancel.load()) {
            rq.res.cancelled = true;
            break;
        }
        // The positions this step may reveal, and how many the schedule reveals now.
        sched.active_masks(step, rq);
        const int32_t n_active = (int32_t) rq.active.size();
        if (n_active == 0) {
            continue;
        }
        double        p_origin;
        const int32_t k = sched.reveal_count(step, n_active, rq.block_masks, p_origin);
        if (p.algorithm == dc_algorithm::origin ? p_origin <= 0.0 :
                                                  (k == 0 && !(p.confidence_threshold > 0) && !(p.entropy_bound > 0))) {
            continue;  // nothing would change: skip the forward pass
        }

        dc_step ev;
        ev.step    = step;
        int32_t r0 = 0;  // cached modes: the batch's first position (its output rows are packed)
        if (!timed_pass(rq, ev, [&] { return forward_step(rq, sched, step, p, ev, r0, cancel); })) {
            break;
        }
        const auto t_samp = clock_type::now();

        read_picks(rq, p, r0, step, sched.total_steps, p_origin, ev);
        if (p.algorithm != dc_algorithm::origin) {
            choose(rq, p, k);
        }
        for (int32_t c : rq.chosen) {
            if (rq.picks[c].token == mask_) {
                // Dream writes a predicted mask back: the place stays masked and is predicted again on later
                // steps (on the last one it stays a mask, which adds no text to its hole).
                continue;
            }
            reveal(rq, rq.active[c], rq.picks[c].token, (float) rq.picks[c].confidence, step, ev);
        }
        if (p.early_stop) {
            // Everything after a hole's first revealed end-of-text is end-of-text too.
            stop_at_end(rq, rq.holes, step, ev);
        }
        if (p.stop_at_line_end) {
            stop_at_line_end(rq, step, ev);
        }

        ev.total_steps = sched.masks_ahead(step, rq) ? sched.total_steps : step + 1;
        end_step(rq, std::move(ev), ms_since(t_samp), on_step);
    }
}

bool DiffusionDecoder::timed_pass(request & rq, dc_step & ev, const std::function<bool()> & pass) {
    copied_          = 0;
    const auto t_fwd = clock_type::now();
    if (!pass()) {
        rq.res.cancelled = true;
        return false;
    }
    if (ev.full) {
        rq.res.full_passes++;
    }
    ev.forward_ms   = ms_since(t_fwd);
    ev.copied_bytes = copied_;
    return true;
}

void DiffusionDecoder::end_step(request &                               rq,
                                dc_step &&                              ev,
                                double                                  sample_ms,
                                const std::function<void(dc_step &&)> & on_step) {
    ev.sample_ms = sample_ms;
    rq.res.forward_passes++;
    rq.res.forward_ms += ev.forward_ms;
    rq.res.sample_ms += ev.sample_ms;
    rq.res.copied_bytes += ev.copied_bytes;
    if (on_step) {
        on_step(std::move(ev));
    }
}

void DiffusionDecoder::run_variable(request &                               rq,
                                    const dc_params &                       p,
                                    const std::function<void(dc_step &&)> & on_step,
                                    const std::atomic<bool> &               cancel) {
    int32_t budget = 0;  // every hole at its maximum length
    int32_t bound  = p.steps;
    for (const dc_hole & h : rq.holes) {
        budget += h.max_length;
        bound += h.length + 3 * expansion_budget(h);  // a reveal a step at least; an expansion adds two masks
    }
    rq.expansions.assign(rq.holes.size(), 0);
    rq.n_outputs           = budget;
    const int32_t per_step = std::max(1, budget / p.steps);
    const int32_t n_max    = (int32_t) rq.tokens.size() - (int32_t) rq.gen.size() + budget;
    if (p.cache != dc_cache::none) {
        ensure_kv_context(n_max, budget, p.cache_f16, p.reuse_key.empty() && cached_.n_seq == 1 ? 1 : kReuseSlots,
                          false);
        seq_ = take_slot(p.reuse_key);
    } else {
        ensure_context(n_max, budget, false);
    }
    rq.resized = true;  // the cache holds nothing of this request yet

    // A step that reveals nothing (every chosen prediction the mask) still counts towards the bound: it ends a
    // model that predicts the mask forever.
    for (int32_t step = 0; step < bound && rq.n_masked > 0; step++) {
        if (cancel.load()) {
            rq.res.cancelled = true;
            break;
        }
        rq.active.clear();
        rq.no_expand.clear();
        for (size_t h = 0; h < rq.holes.size(); h++) {
            const dc_hole & hole = rq.holes[h];
            const bool      full = hole.length >= hole.max_length || rq.expansions[h] >= expansion_budget(hole);
            for (int32_t i = hole.start; i < hole.start + hole.length; i++) {
                if (rq.masked[i]) {
                    rq.active.push_back(i);
                    rq.no_expand.push_back(full ? 1 : 0);
                }
            }
        }

        dc_step ev;
        ev.step    = step;
        int32_t r0 = 0;
        if (!timed_pass(rq, ev, [&] {
                active_rows(rq);
                if (p.cache == dc_cache::none) {
                    ev.n_rows = (int32_t) rq.tokens.size();
                    return forward(rq.tokens, rq.n_outputs, &rq.rows, rq.reduce, cancel);
                }
                return variable_pass(rq, p, ev, r0, cancel);
            })) {
            break;
        }
        const auto t_samp = clock_type::now();

        read_picks(rq, p, r0, step, p.steps, 1.0, ev);
        choose(rq, p, std::min(per_step, (int32_t) rq.active.size()));
        for (int32_t c : rq.chosen) {
            if (rq.picks[c].token != mask_) {  // Dream's rule: a predicted mask stays masked
                reveal(rq, rq.active[c], rq.picks[c].token, (float) rq.picks[c].confidence, step, ev);
            }
        }
        resize_holes(rq, step, ev);
        for (const dc_hole & h : rq.holes) {
            ev.hole_lengths.push_back(h.length);
            ev.hole_tokens.insert(ev.hole_tokens.end(), rq.tokens.begin() + h.start,
                                  rq.tokens.begin() + h.start + h.length);
        }

        ev.total_steps = std::min(bound, step + 1 + (rq.n_masked + per_step - 1) / per_step);
        end_step(rq, std::move(ev), ms_since(t_samp), on_step);
    }
    rq.res.holes = rq.holes;
}

bool DiffusionDecoder::variable_pass(request &                 rq,
                                     const dc_params &         p,
                                     dc_step &                 ev,
                                     int32_t &                 r0,
                                     const std::atomic<bool> & cancel) {
    const int32_t n = (int32_t) rq.tokens.size();
    if (rq.resized || p.refresh_every_step) {
        rq.resized = false;
        return refresh_cache(rq, ev, cancel);
    }
    r0               = rq.rows.front();
    const int32_t r1 = p.cache == dc_cache::dual ? rq.active.back() + 1 : n;
    ev.n_rows        = r1 - r0;
    ev.full          = false;
    return forward_kv(rq.tokens, r0, r1, rq.rows, false, false, cancel);
}

void DiffusionDecoder::resize_holes(request & rq, int32_t step, dc_step & ev) {
    const auto erase = [&](int32_t i) {
        rq.tokens.erase(rq.tokens.begin() + i);
        rq.masked.erase(rq.masked.begin() + i);
        rq.res.reveal_step.erase(rq.res.reveal_step.begin() + i);
    };
    for (int32_t h = (int32_t) rq.holes.size() - 1; h >= 0; h--) {
        dc_hole &     hole     = rq.holes[h];
        const int32_t was      = hole.length;
        // Pad to the right: the masks after the hole's first delete are deletes too.
        bool          deleting = false;
        for (int32_t i = hole.start; i < hole.start + hole.length; i++) {
            if (deleting && rq.masked[i]) {
                reveal(rq, i, rq.del, std::numeric_limits<float>::quiet_NaN(), step, ev);
            }
            deleting = deleting || (!rq.masked[i] && rq.tokens[i] == rq.del);
        }
        for (int32_t i = hole.start + hole.length - 1; i >= hole.start; i--) {
            if (!rq.masked[i] && rq.tokens[i] == rq.del) {
                erase(i);
                hole.length--;
                rq.resized = true;  // every later position moved: the cached cells are stale
            }
        }
        // Right to left, so that the rightmost expansions get the room left.
        for (int32_t i = hole.start + hole.length - 1; i >= hole.start; i--) {
            if (rq.masked[i] || rq.tokens[i] != rq.expand) {
                continue;
            }
            rq.tokens[i]          = mask_;
            rq.masked[i]          = 1;
            rq.res.reveal_step[i] = -1;
            rq.n_masked++;
            if (hole.length < hole.max_length && rq.expansions[h] < expansion_budget(hole)) {
                rq.tokens.insert(rq.tokens.begin() + i, mask_);
                rq.masked.insert(rq.masked.begin() + i, 1);
                rq.res.reveal_step.insert(rq.res.reveal_step.begin() + i, -1);
                rq.n_masked++;
                hole.length++;
                rq.expansions[h]++;
                rq.resized = true;
            }
        }
        for (size_t j = h + 1; j < rq.holes.size(); j++) {
            rq.holes[j].start += hole.length - was;
        }
    }
}
