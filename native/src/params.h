// The decoder's API types: one params struct and what a request gives and gets back.
#pragma once

#include "llama.h"

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

enum class dc_algorithm { origin, maskgit_plus, topk_margin, entropy };
enum class dc_schedule { timestep, block };
// none: every step recomputes the whole sequence (exact). prefix: a KV cache of everything before the active
// block, the block and all after it recomputed each step. dual: the sequence after the block is cached too;
// only the block is recomputed. Both caches are refreshed (one full pass) when a block starts (Fast-dLLM).
enum class dc_cache { none, prefix, dual };

struct dc_params {
    int32_t      steps                = 32;
    dc_algorithm algorithm            = dc_algorithm::maskgit_plus;
    dc_schedule  schedule             = dc_schedule::timestep;
    double       eps                  = 1e-3;  // Dream's time grid: t = linspace(1, eps, steps + 1)
    int32_t      block_length         = 32;    // LLaDA's block schedule
    float        temperature          = 0.0f;  // 0: exact argmax
    float        top_p                = 1.0f;
    int32_t      top_k                = 0;
    uint32_t     seed                 = 0;
    float        alg_temp             = 0.0f;   // > 0: draw positions from softmax(confidence / alg_temp)
    float        confidence_threshold = 0.0f;   // > 0: also reveal every position above it, at least one a step
    float        entropy_bound        = 0.0f;   // > 0: also reveal, most confident first, the largest set whose
                                                // summed entropy stays <= it (EB-sampler), at least one a step
    dc_cache     cache                = dc_cache::none;
    bool         refresh_every_step   = false;  // cached modes: full pass into the cache before every step (tests)
    bool         cache_f16            = false;  // cached modes: F16 K/V (faster attention; logits no longer
                                                // equal a full pass's to ~1e-6 but to ~1e-3)
    float        eot_penalty          = 0.0f;   // subtracted from end-of-text / pad logits ...
    float        eot_penalty_decay    = 1.0f;   // ... times (1 - step / steps) ^ decay
    bool         early_stop           = false;  // a revealed end-of-text ends its hole
    bool         stop_at_line_end     = false;  // fixed-length holes: a revealed line break with every place
                                                // before it revealed ends its hole (line completions: what
                                                // follows the line is cut, so its steps are not run)
    // Cached modes, across requests: a non-empty key (the editor's document) keeps that sequence's cache after
    // the request. The next request with the same key keeps the cells of text it still has (runs of 32 tokens or
    // more, moved to their new positions when the window moved or lines came and went) and re-decodes the rest
    // and the holes, instead of the first block's full pass. Approximate, like the dual cache: kept cells saw
    // the old text.
    std::string  reuse_key;
    int32_t      reuse_max_requests = 16;     // a full pass after this many requests reused a key's cache, or once
    int32_t      reuse_max_changed  = 256;    // they re-decoded more than this many tokens outside the holes
    bool         trace_logits       = false;  // copy each step's candidate logits out (tests)
    int32_t      threads            = 0;      // CPU threads for this request; 0: the model's (the server
                                              // lowers it while other programs keep the cores busy)
    bool         device_reductions  = true;   // greedy (temperature 0, no top-k/top-p, no eot_penalty, no
                                              // trace): llama.cpp reduces each logits row where it computed
                                              // it and copies out 20 bytes a row (native/patches/0002); false:
                                              // the rows themselves, scanned here. The addon turns it on
                                              // only where the logits are on a GPU unless told otherwise
    // Variable-length holes: the token that asks for room and the one that gives it back; LLAMA_TOKEN_NULL: the
    // model's (DiffusionDecoder::expand_token).
    llama_token  expand_token       = LLAMA_TOKEN_NULL;
    llama_token  delete_token       = LLAMA_TOKEN_NULL;
};

// A hole: `length` mask tokens at `start` in the sequence. With `max_length` > `length` its length is variable
// (DreamOn): a revealed expand token becomes two masks while the hole is shorter than `max_length`, a revealed delete
// token is removed, and once a hole holds a delete the masks after it are deleted too.
struct dc_hole {
    int32_t start;
    int32_t length;
    int32_t max_length = 0;  // 0: `length`, fixed
};

struct dc_step {
    int32_t                  step        = 0;  // index in the schedule (steps that reveal nothing are skipped)
    // The steps the run plans as of this one: step + 1 once nothing is left to reveal (so the last event of a run that
    // ended has step + 1 == total_steps), never less than step + 1. Fixed-length holes: the schedule's count until
    // then; variable-length holes: this step plus the steps the masks left need at this step's rate.
    int32_t                  total_steps = 0;
    std::vector<int32_t>     positions;    // revealed this step, in reveal order
    std::vector<llama_token> tokens;
    std::vector<float>       confidences;  // of each revealed position (NaN: filled by early_stop)
    std::vector<int32_t>     candidates;   // trace: positions whose logits rows follow
    std::vector<float>       logits;       // trace: candidates.size() * n_vocab raw logits
    double                   forward_ms   = 0;
    double                   sample_ms    = 0;
    int32_t                  n_rows       = 0;      // positions the forward pass computed
    bool                     full         = true;   // a pass over the whole sequence (exact mode, cache refresh)
    bool                     reused       = false;  // a block start that re-decoded only what changed (reuse_key)
    int64_t                  copied_bytes = 0;      // read out of llama.cpp's output buffer: logits rows or reductions
    // Variable-length holes: every hole's tokens after this step (masks included), hole after hole, and each hole's
    // length. `positions` above are those before the step grew or shrank the holes.
    std::vector<llama_token> hole_tokens;
    std::vector<int32_t>     hole_lengths;
};

struct dc_result {
    std::vector<llama_token> tokens;
    std::vector<dc_hole>     holes;               // where the holes ended (their lengths change when variable)
    std::vector<int32_t>     reveal_step;         // per position; -1 for fixed text
    int32_t                  forward_passes = 0;
    int32_t                  full_passes    = 0;  // of which over the whole sequence (all, in exact mode)
    int32_t                  reused_tokens  = 0;  // positions whose cached cells a reuse_key request kept
    double                   total_ms       = 0;
    double                   forward_ms     = 0;
    double                   sample_ms      = 0;
    int64_t                  copied_bytes   = 0;  // all steps' copied_bytes
    int64_t                  compute_bytes  = 0;  // the context's compute buffers (llama.cpp's worst-case reserve)
    bool                     cancelled      = false;
};

struct dc_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// A position's candidate token, the confidence its algorithm ranks it by, and its row's entropy.
struct dc_pick {
    llama_token token;
    double      confidence;
    double      entropy;
};
