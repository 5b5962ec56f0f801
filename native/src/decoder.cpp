#include "decoder.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

namespace {

using clock_type = std::chrono::steady_clock;

double ms_since(clock_type::time_point t0) {
    return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}

bool abort_requested(void * data) {
    auto * flag = *static_cast<const std::atomic<bool> **>(data);
    return flag != nullptr && flag->load();
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
    n_vocab_(llama_vocab_n_tokens(vocab_)),
    shift_(dc_model_shift_logits(model)),
    mask_(llama_vocab_mask(vocab_)) {
    for (llama_token t = 0; t < n_vocab_; t++) {
        if (llama_vocab_is_eog(vocab_, t) || t == llama_vocab_pad(vocab_)) {
            end_tokens_.push_back(t);
        }
    }
    probs_.resize(n_vocab_);
}

DiffusionDecoder::~DiffusionDecoder() {
    if (ctx_) {
        llama_batch_free(batch_);
        llama_free(ctx_);
    }
}

void DiffusionDecoder::ensure_context(int32_t n_tokens) {
    if (ctx_ && n_tokens <= capacity_) {
        return;
    }
    if (ctx_) {
        llama_batch_free(batch_);
        llama_free(ctx_);
        ctx_ = nullptr;
    }
    // Non-causal decoding runs the whole sequence as one micro-batch: n_ubatch must cover it.
    const int32_t cap = ((n_tokens + 255) / 256) * 256;

    llama_context_params cp = llama_context_default_params();
    cp.n_ctx           = cap;
    cp.n_batch         = cap;
    cp.n_ubatch        = cap;
    cp.n_seq_max       = 1;
    cp.n_threads       = n_threads_;
    cp.n_threads_batch = n_threads_;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.no_perf         = true;
    ctx_ = llama_init_from_model(model_, cp);
    if (!ctx_) {
        throw dc_error("could not create a llama.cpp context for " + std::to_string(cap) +
                       " tokens (out of memory?)");
    }
    capacity_ = cap;
    batch_    = llama_batch_init(cap, 0, 1);
    llama_set_abort_callback(ctx_, abort_requested, &cancel_);
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

const float * DiffusionDecoder::forward(const std::vector<llama_token> & tokens, const std::atomic<bool> & cancel) {
    const int32_t n = (int32_t) tokens.size();
    ensure_context(n);
    for (int32_t i = 0; i < n; i++) {
        batch_.token[i]     = tokens[i];
        batch_.pos[i]       = i;
        batch_.n_seq_id[i]  = 1;
        batch_.seq_id[i][0] = 0;
        batch_.logits[i]    = 1;
    }
    batch_.n_tokens = n;
    cancel_         = &cancel;
    const int ret   = llama_decode(ctx_, batch_);
    cancel_         = nullptr;
    if (ret != 0) {
        if (cancel.load()) {
            return nullptr;
        }
        throw dc_error("llama_decode failed with code " + std::to_string(ret));
    }
    return llama_get_logits(ctx_);
}

std::vector<float> DiffusionDecoder::forward_all(const std::vector<llama_token> & tokens,
                                                 const std::atomic<bool> &        cancel) {
    check_sequence(tokens);
    const float * logits = forward(tokens, cancel);
    if (!logits) {
        return {};
    }
    return std::vector<float>(logits, logits + tokens.size() * (size_t) n_vocab_);
}

DiffusionDecoder::pick DiffusionDecoder::sample(float * row, const dc_params & p, std::mt19937 & rng) {
    const int32_t n      = n_vocab_;
    const bool    greedy = p.temperature <= 0.0f;
    if (!greedy) {
        for (int32_t i = 0; i < n; i++) {
            row[i] /= p.temperature;
        }
    }

    // Kept set, as in Dream: top-p over the whole distribution, then top-k. `id(i)` is its i-th member.
    const int32_t top_k    = (p.top_k > 0 && p.top_k < n) ? p.top_k : n;
    const bool    filtered = top_k < n || p.top_p < 1.0f;
    int32_t       m        = n;
    if (filtered) {
        order_.resize(n);
        std::iota(order_.begin(), order_.end(), 0);
        auto by_logit = [row](int32_t a, int32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); };
        if (p.top_p < 1.0f) {
            std::sort(order_.begin(), order_.end(), by_logit);
            const double mx = row[order_[0]];
            double       z  = 0;
            for (int32_t i = 0; i < n; i++) {
                z += std::exp((double) row[order_[i]] - mx);
            }
            // Remove a token once the mass before it already exceeds top_p (the first always stays).
            double cum = 0;
            m          = n;
            for (int32_t i = 0; i < n; i++) {
                if (cum > p.top_p) {
                    m = i;
                    break;
                }
                cum += std::exp((double) row[order_[i]] - mx) / z;
            }
            m = std::min(m, top_k);
        } else {
            std::partial_sort(order_.begin(), order_.begin() + top_k, order_.end(), by_logit);
            m = top_k;
        }
    }
    auto id = [&](int32_t i) { return filtered ? order_[i] : i; };

    llama_token top1 = id(0);
    llama_token top2 = m > 1 ? id(1) : -1;
    if (!filtered) {
        top1 = top2 = -1;
        for (int32_t i = 0; i < n; i++) {
            if (top1 < 0 || row[i] > row[top1]) {
                top2 = top1;
                top1 = i;
            } else if (top2 < 0 || row[i] > row[top2]) {
                top2 = i;
            }
        }
    }
    const double mx = row[top1];
    double       z  = 0;
    for (int32_t i = 0; i < m; i++) {
        probs_[i] = std::exp((double) row[id(i)] - mx);
        z += probs_[i];
    }

    llama_token token = top1;
    if (!greedy) {
        const double u   = std::uniform_real_distribution<double>(0.0, 1.0)(rng) * z;
        double       cum = 0;
        token            = id(m - 1);
        for (int32_t i = 0; i < m; i++) {
            cum += probs_[i];
            if (u < cum) {
                token = id(i);
                break;
            }
        }
    }

    double conf = 0;
    switch (p.algorithm) {
        case dc_algorithm::origin:
            break;
        case dc_algorithm::maskgit_plus:
            conf = std::exp((double) row[token] - mx) / z;
            break;
        case dc_algorithm::topk_margin:
            conf = (1.0 - (top2 >= 0 ? std::exp((double) row[top2] - mx) : 0.0)) / z;
            break;
        case dc_algorithm::entropy:
            // sum(p * log p): minus the entropy, so larger means more certain (Dream's sign).
            for (int32_t i = 0; i < m; i++) {
                const double pi = probs_[i] / z;
                conf += pi * std::log(pi + 1e-10);
            }
            break;
    }
    return { token, conf };
}

dc_result DiffusionDecoder::run(std::vector<llama_token>                tokens,
                                const std::vector<dc_hole> &            holes,
                                const dc_params &                       p,
                                const std::function<void(dc_step &&)> & on_step,
                                const std::atomic<bool> &               cancel) {
    const auto    t_start = clock_type::now();
    const int32_t n       = (int32_t) tokens.size();

    if (mask_ == LLAMA_TOKEN_NULL) {
        throw dc_error("the model has no mask token");
    }
    if (p.steps < 1) {
        throw dc_error("steps must be at least 1");
    }
    if (p.schedule == dc_schedule::block && p.block_length < 1) {
        throw dc_error("block_length must be at least 1");
    }
    if (p.algorithm == dc_algorithm::origin && p.confidence_threshold > 0) {
        throw dc_error("confidence_threshold needs a confidence-ordered algorithm, not origin");
    }
    check_sequence(tokens);

    // Generated positions in sequence order, and which hole each belongs to.
    std::vector<int32_t> gen;
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
    for (int32_t i = 0; i < n; i++) {
        if (hole_of[i] >= 0) {
            gen.push_back(i);
        }
    }
    if (gen.empty()) {
        throw dc_error("nothing to generate: the request has no hole");
    }

    const int32_t n_gen = (int32_t) gen.size();
    int32_t       n_blocks = 1, steps_per_block = p.steps, total_steps = p.steps;
    if (p.schedule == dc_schedule::block) {
        n_blocks        = (n_gen + p.block_length - 1) / p.block_length;
        steps_per_block = std::max(1, p.steps / n_blocks);
        total_steps     = n_blocks * steps_per_block;
    }

    dc_result res;
    res.reveal_step.assign(n, -1);
    std::vector<char> masked(n, 0);
    for (int32_t i : gen) {
        masked[i] = 1;
    }
    int32_t n_masked = n_gen;

    auto is_end = [&](llama_token t) {
        return std::find(end_tokens_.begin(), end_tokens_.end(), t) != end_tokens_.end();
    };

    std::mt19937             rng(p.seed);
    std::vector<int32_t>     active;
    std::vector<float>       row(n_vocab_);
    std::vector<pick>        picks;
    std::vector<int32_t>     chosen;
    int32_t                  block_masks = 0;

    for (int32_t step = 0; step < total_steps && n_masked > 0; step++) {
        if (cancel.load()) {
            res.cancelled = true;
            break;
        }
        // The positions this step may reveal: every mask, or the masks of the current block.
        active.clear();
        const int32_t local = p.schedule == dc_schedule::block ? step % steps_per_block : step;
        if (p.schedule == dc_schedule::block) {
            const int32_t b = step / steps_per_block;
            for (int32_t g = b * p.block_length; g < std::min(n_gen, (b + 1) * p.block_length); g++) {
                if (masked[gen[g]]) {
                    active.push_back(gen[g]);
                }
            }
            if (local == 0) {
                block_masks = (int32_t) active.size();
            }
        } else {
            for (int32_t i : gen) {
                if (masked[i]) {
                    active.push_back(i);
                }
            }
        }
        const int32_t n_active = (int32_t) active.size();
        if (n_active == 0) {
            continue;
        }

        // How many the schedule reveals now.
        int32_t k;
        double  p_origin;
        if (p.schedule == dc_schedule::timestep) {
            const double t = 1.0 - (double) step / p.steps * (1.0 - p.eps);
            const double s = 1.0 - (double) (step + 1) / p.steps * (1.0 - p.eps);
            p_origin       = step < p.steps - 1 ? 1.0 - s / t : 1.0;
            k              = step < p.steps - 1 ? (int32_t) std::floor(n_active * (1.0 - s / t)) : n_active;
        } else {
            const int32_t base = block_masks / steps_per_block;
            const int32_t rem  = block_masks % steps_per_block;
            k                  = local == steps_per_block - 1 ? n_active : std::min(n_active, base + (local < rem ? 1 : 0));
            p_origin           = (double) k / n_active;
        }
        const bool thresholded = p.confidence_threshold > 0;
        if (p.algorithm == dc_algorithm::origin ? p_origin <= 0.0 : (k == 0 && !thresholded)) {
            continue;  // nothing would change: skip the forward pass
        }

        dc_step ev;
        ev.step             = step;
        const auto    t_fwd = clock_type::now();
        const float * logits = forward(tokens, cancel);
        if (!logits) {
            res.cancelled = true;
            break;
        }
        ev.forward_ms      = ms_since(t_fwd);
        const auto t_samp  = clock_type::now();
        const double steps_frac = (double) step / total_steps;
        const float  penalty    = p.eot_penalty * (float) std::pow(std::max(0.0, 1.0 - steps_frac), p.eot_penalty_decay);

        picks.clear();
        chosen.clear();
        for (int32_t pos : active) {
            if (p.algorithm == dc_algorithm::origin &&
                std::uniform_real_distribution<double>(0.0, 1.0)(rng) >= p_origin) {
                picks.push_back({ mask_, 0 });
                continue;
            }
            const float * src = logits + (size_t) (shift_ ? pos - 1 : pos) * n_vocab_;
            if (p.trace_logits) {
                ev.candidates.push_back(pos);
                ev.logits.insert(ev.logits.end(), src, src + n_vocab_);
            }
            std::memcpy(row.data(), src, sizeof(float) * n_vocab_);
            if (penalty != 0.0f) {
                for (llama_token t : end_tokens_) {
                    row[t] -= penalty;
                }
            }
            picks.push_back(sample(row.data(), p, rng));
            if (p.algorithm == dc_algorithm::origin) {
                chosen.push_back((int32_t) picks.size() - 1);
            }
        }

        if (p.algorithm != dc_algorithm::origin) {
            std::vector<int32_t> idx(n_active);
            std::iota(idx.begin(), idx.end(), 0);
            if (p.alg_temp > 0) {
                // Drawing k without replacement from softmax(conf / alg_temp) == top-k of Gumbel-perturbed keys.
                std::vector<double> key(n_active);
                for (int32_t i = 0; i < n_active; i++) {
                    const double u = std::uniform_real_distribution<double>(1e-20, 1.0)(rng);
                    key[i]         = picks[i].confidence / p.alg_temp - std::log(-std::log(u));
                }
                std::stable_sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) { return key[a] > key[b]; });
            } else {
                // Most confident first; ties go to the earlier position.
                std::stable_sort(idx.begin(), idx.end(),
                                 [&](int32_t a, int32_t b) { return picks[a].confidence > picks[b].confidence; });
            }
            if (thresholded) {
                int32_t above = 0;
                for (int32_t i = 0; i < n_active; i++) {
                    above += picks[i].confidence > p.confidence_threshold ? 1 : 0;
                }
                k = std::max({ k, above, 1 });
            }
            chosen.assign(idx.begin(), idx.begin() + std::min(k, n_active));
        }

        for (int32_t c : chosen) {
            const int32_t pos = active[c];
            tokens[pos]          = picks[c].token;
            masked[pos]          = 0;
            res.reveal_step[pos] = step;
            ev.positions.push_back(pos);
            ev.tokens.push_back(picks[c].token);
            n_masked--;
        }

        if (p.early_stop) {
            // Everything after a hole's first revealed end-of-text is end-of-text too.
            for (const dc_hole & hole : holes) {
                llama_token fill = LLAMA_TOKEN_NULL;
                for (int32_t i = hole.start; i < hole.start + hole.length; i++) {
                    if (fill == LLAMA_TOKEN_NULL) {
                        if (!masked[i] && is_end(tokens[i])) {
                            fill = tokens[i];
                        }
                    } else if (masked[i]) {
                        tokens[i]          = fill;
                        masked[i]          = 0;
                        res.reveal_step[i] = step;
                        ev.positions.push_back(i);
                        ev.tokens.push_back(fill);
                        n_masked--;
                    }
                }
            }
        }

        ev.sample_ms = ms_since(t_samp);
        res.forward_passes++;
        res.forward_ms += ev.forward_ms;
        res.sample_ms += ev.sample_ms;
        if (on_step) {
            on_step(std::move(ev));
        }
    }

    res.tokens   = std::move(tokens);
    res.total_ms = ms_since(t_start);
    return res;
}
