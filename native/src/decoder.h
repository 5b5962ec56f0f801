// Masked-diffusion decoding next to llama.cpp: one params struct, one decoder class, one loop.
// The algorithms follow Dream's reference `diffusion_generate` (not llama.cpp's examples/diffusion,
// whose entropy order is inverted and whose temperature 0 still samples); see docs/runtime.md, "Decoding parameters".
#pragma once

#include "llama.h"
#include "params.h"
#include "sampling.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

class DiffusionDecoder {
  public:
    static constexpr int32_t kReuseSlots = 4;  // documents whose caches are kept (each a sequence's K/V)

    DiffusionDecoder(llama_model * model, int32_t n_threads);
    ~DiffusionDecoder();
    DiffusionDecoder(const DiffusionDecoder &)             = delete;
    DiffusionDecoder & operator=(const DiffusionDecoder &) = delete;

    // Fills the holes of `tokens` (their places must hold the mask token). Throws dc_error on bad input.
    dc_result run(std::vector<llama_token>                tokens,
                  const std::vector<dc_hole> &            holes,
                  const dc_params &                       params,
                  const std::function<void(dc_step &&)> & on_step,
                  const std::atomic<bool> &               cancel);

    // One bidirectional forward pass; all rows of logits, row-major (tests check the shift with it).
    std::vector<float> forward_all(const std::vector<llama_token> & tokens, const std::atomic<bool> & cancel);

    // The cached modes' context for `n_tokens` a sequence, `n_seq` sequences and at most `n_outputs` output rows a
    // batch; the load measures it to fit the GPU layers (addon.cpp).
    static llama_context_params kv_context_params(int32_t n_tokens,
                                                  int32_t n_outputs,
                                                  int32_t n_seq,
                                                  bool    f16,
                                                  int32_t n_threads);

    bool shift_logits() const { return shift_; }

    int32_t n_vocab() const { return n_vocab_; }

    const std::vector<llama_token> & end_tokens() const { return end_tokens_; }

    // Variable-length holes (DreamOn): the tokens that grow and shrink a hole; LLAMA_TOKEN_NULL when the model has
    // none. Read from the GGUF's diffusion.expand_token_id / diffusion.delete_token_id, else from control tokens
    // named <|expand|> / <|delete|>; a model with an expand token and no delete token deletes with end-of-text.
    llama_token expand_token() const { return expand_; }

    llama_token delete_token() const { return delete_; }

  private:
    // Refuses, before llama.cpp would abort on it, a sequence that is empty, too long or outside the vocabulary.
    void check_sequence(const std::vector<llama_token> & tokens) const;

    // A llama.cpp context sized for one sequence and the batch that feeds it: exact mode and the cached
    // modes keep one each, reused while a request fits its capacity.
    struct sequence_context {
        const char *    name;  // for error messages
        llama_context * ctx = nullptr;
        llama_batch     batch{};
        int32_t         capacity = 0;      // tokens per sequence
        int32_t         outputs  = 0;      // n_outputs_max: the most output rows one batch may ask for
        int32_t         n_seq    = 1;      // sequences (the cached context: one per reuse slot)
        bool            f16      = false;  // K/V type (the cached context)
        bool            reduce   = false;  // llama_set_diffusion_reductions (native/patches/0002) is on
        bool            used     = false;  // has run a batch since it was made
        void            close();
    };

    // A sequence of the cached context and what its cells hold: `cells[i]` is the token position i was last
    // decoded from (empty: nothing usable). Keyed by reuse_key; the least recently used one is taken over.
    struct reuse_slot {
        std::string              key;
        std::vector<llama_token> cells;
        int32_t                  reuses  = 0;  // requests since the last full pass
        int32_t                  changed = 0;  // tokens outside holes re-decoded by those requests
        uint64_t                 used    = 0;
    };

    // (Re)creates `sc` with `cp`, its batch and the abort callback that reads `cancel_`.
    void    open(sequence_context & sc, const llama_context_params & cp);
    // Decodes tokens[r0, r1) at their positions, with output rows: all when `rows` is null, else those listed
    // (the last one when the list is empty); the rows' reductions instead of their logits when `reduce`.
    // Adds the bytes llama.cpp copies out to copied_. False when cancelled.
    bool    decode(sequence_context &               sc,
                   const std::vector<llama_token> & tokens,
                   int32_t                          r0,
                   int32_t                          r1,
                   const std::vector<int32_t> *     rows,
                   bool                             reduce,
                   const std::atomic<bool> &        cancel,
                   llama_seq_id                     seq = 0);
    // The exact and the cached context for a request: made anew when too small, or when its reductions would have to
    // switch after it has run (set_reductions).
    void    ensure_context(int32_t n_tokens, int32_t n_outputs, bool reduce);
    void    ensure_kv_context(int32_t n_tokens, int32_t n_outputs, bool f16, int32_t n_seq, bool reduce);
    void    set_reductions(sequence_context & sc, bool reduce);
    // The cached context's sequence for this request: the slot keyed `key` (empty: one nobody asks for again).
    int32_t take_slot(const std::string & key);

    // Reuse: keeps the runs of the request's slot's cells whose tokens the request still has (moved to their new
    // positions) and gives the spans of `tokens` to re-decode, the one holding rows [lo, hi] last. False, with
    // nothing changed, when a full pass is due (no slot, nothing kept, or the refresh rule).
    struct span {
        int32_t r0, r1;
    };

    bool keep_cells(const std::vector<llama_token> & tokens,
                    int32_t                          lo,
                    int32_t                          hi,
                    const dc_params &                p,
                    std::vector<span> &              spans);

    // keep_cells()'s steps. A run: tokens[p, p + len) equal to the slot's old cells[c, c + len).
    struct kept_run {
        int32_t p, c, len;
    };

    // The runs of `tokens` outside [lo, hi] (the holes and the row before them) found in the slot's cells, in order:
    // the window may have moved and lines may have been typed or deleted, so a run may sit elsewhere now (only where
    // the memory can shift positions).
    std::vector<kept_run>    find_runs(const std::vector<llama_token> & tokens,
                                       int32_t                          lo,
                                       int32_t                          hi,
                                       bool                             can_shift) const;
    // The spans between the runs, to re-decode: at most three decode calls, so the shortest run between two spans is
    // dropped (re-decoded instead) until so.
    static std::vector<span> plan_spans(std::vector<kept_run> & runs, int32_t n);
    // Drops every other cell of the slot's sequence and moves the runs' cells to their new positions.
    void                     move_cells(const std::vector<kept_run> & runs, int32_t n);
    // Exact mode: the whole sequence, output rows as in decode(); false when cancelled.
    bool                     forward(const std::vector<llama_token> & tokens,
                                     int32_t                          n_outputs,
                                     const std::vector<int32_t> *     rows,
                                     bool                             reduce,
                                     const std::atomic<bool> &        cancel);
    // Cached modes: decodes tokens[r0, r1) of the request's sequence against the cache (after removing those
    // cells; all of them when `clear`) with output rows `rows` only; false when cancelled.
    bool                     forward_kv(const std::vector<llama_token> & tokens,
                                        int32_t                          r0,
                                        int32_t                          r1,
                                        const std::vector<int32_t> &     rows,
                                        bool                             clear,
                                        bool                             reduce,
                                        const std::atomic<bool> &        cancel);

    // One request's state through its steps: run() makes it, the steps below read and update it.
    struct request {
        std::vector<llama_token> tokens;  // the sequence: holes masked, revealed tokens written in
        std::vector<int32_t>     gen;     // generated positions in sequence order
        std::vector<char>        masked;  // per position: still masked
        int32_t                  n_masked = 0;
        dc_result                res;
        std::mt19937             rng;
        bool                     reduce       = false;  // device reductions (greedy over the whole vocabulary)
        int32_t                  n_outputs    = 1;   // the most output rows a step asks for (a block's, or all holes')
        int32_t                  block_masks  = 0;   // masks of the current block at its first step
        int32_t                  cached_block = -1;  // the block whose refresh the cache holds
        std::vector<int32_t>     active;             // this step's masked candidates
        std::vector<int32_t>     rows;               // the output rows this step reads
        std::vector<dc_pick>     picks;              // per active position: token, confidence, entropy
        std::vector<int32_t>     chosen;             // indices into picks that this step reveals
        std::vector<float>       row;                // a logits row copied to apply the end-of-text penalty
        std::vector<span>        spans;              // reuse: the spans to re-decode
        // Variable-length holes: where each hole is now, its expansions so far, the tokens that resize it, and per
        // active position whether its hole has no room left (its expand logit is pushed down).
        std::vector<dc_hole>     holes;
        std::vector<int32_t>     expansions;
        llama_token              expand = LLAMA_TOKEN_NULL;
        llama_token              del    = LLAMA_TOKEN_NULL;
        std::vector<char>        no_expand;
        bool                     resized = false;  // a hole changed length at the last step: the cache is stale
    };

    // The schedule: which masks a step may reveal (all, or its block's) and how many it reveals.
    struct schedule {
        schedule(const dc_params & p, int32_t n_gen);
        const dc_params & p;
        int32_t           n_gen;
        int32_t           steps_per_block;
        int32_t           total_steps;

        int32_t block(int32_t step) const { return step / steps_per_block; }

        int32_t local(int32_t step) const { return p.schedule == dc_schedule::block ? step % steps_per_block : step; }

        void    active_masks(int32_t step, request & rq) const;
        // Whether a step after `step` has masks to reveal (in the next step's block or after it): if not, `step` was
        // the run's last. A mask left in a finished block (the model predicted the mask) is not revealed again.
        bool    masks_ahead(int32_t step, const request & rq) const;
        // The count the schedule reveals of `n_active` masks; p_origin: the per-place chance for origin.
        int32_t reveal_count(int32_t step, int32_t n_active, int32_t block_masks, double & p_origin) const;
    };

    // The named steps of run().
    void                 check_params(const dc_params & p) const;
    // Masks the holes' places of `tokens` and returns them in sequence order; refuses bad or overlapping holes.
    std::vector<int32_t> place_holes(std::vector<llama_token> & tokens, const std::vector<dc_hole> & holes) const;
    // A step's forward pass `pass` (false: cancelled, and the request is marked so), timed, its copied bytes counted.
    bool                 timed_pass(request & rq, dc_step & ev, const std::function<bool()> & pass);
    // A step's end: its sampling time and counts added to the result, the event handed to `on_step`.
    void end_step(request & rq, dc_step && ev, double sample_ms, const std::function<void(dc_step &&)> & on_step);
    // The rows a step reads: row p - 1 for Dream's shifted logits, else row p, of each active position. Only those
    // are output.
    void active_rows(request & rq) const;
    // A cached mode's full pass: it refills the request's sequence of the cache and gives the step's rows.
    bool refresh_cache(request & rq, dc_step & ev, const std::atomic<bool> & cancel);
    // A fixed-length step's forward pass: exact, or the cached modes' refresh, reuse or block pass. `r0`: the first position
    // of the rows it output. False when cancelled.
    bool forward_step(request &                 rq,
                      const schedule &          sched,
                      int32_t                   step,
                      const dc_params &         p,
                      dc_step &                 ev,
                      int32_t &                 r0,
                      const std::atomic<bool> & cancel);
    // A candidate token with its confidence for every active position (origin: those its draw lets through, chosen).
    void read_picks(request &         rq,
                    const dc_params & p,
                    int32_t           r0,
                    int32_t           step,
                    int32_t           total_steps,
                    double            p_origin,
                    dc_step &         ev);
    // The confidence-ordered algorithms: the `k` most confident, or more under the threshold or entropy bound.
    static void choose(request & rq, const dc_params & p, int32_t k);
    void        reveal(request & rq, int32_t pos, llama_token token, float confidence, int32_t step, dc_step & ev);
    // Reveals the hole's still-masked places from `from` on as `fill` (the two stops below).
    void fill_rest(request & rq, const dc_hole & hole, int32_t from, llama_token fill, int32_t step, dc_step & ev);
    // Early stop: after a hole's first revealed end-of-text, the rest of the hole is end-of-text.
    void stop_at_end(request & rq, const std::vector<dc_hole> & holes, int32_t step, dc_step & ev);
    // Line end: once a hole's places up to a line break are all revealed, the rest of the hole is end-of-text.
    void stop_at_line_end(request & rq, int32_t step, dc_step & ev);
    // Whether a token's text holds a line break (\n or \r); the table is made on first use.
    bool breaks_line(llama_token t);

    // run()'s loop for fixed-length holes.
    void run_fixed(request &                               rq,
                   const dc_params &                       p,
                   const std::function<void(dc_step &&)> & on_step,
                   const std::atomic<bool> &               cancel);
    // run()'s loop for a request with a hole whose max_length exceeds its length. Each step reveals
    // sum(max_length) / steps positions (at least one; more under the threshold or entropy bound), most confident
    // first, until no mask is left.
    void run_variable(request &                               rq,
                      const dc_params &                       p,
                      const std::function<void(dc_step &&)> & on_step,
                      const std::atomic<bool> &               cancel);
    // A cached mode's forward pass for variable-length holes: a full pass on the first step and after a hole
    // changed length (every later position moved), else a pass over the holes' span (dual) or from it to the end
    // (prefix).
    bool variable_pass(request & rq, const dc_params & p, dc_step & ev, int32_t & r0, const std::atomic<bool> & cancel);
    // After a step's reveals, each hole (last first): the masks after its first delete become deletes, its deletes
    // are removed, and each expand becomes two masks while the hole has room and budget (else one mask again).
    void resize_holes(request & rq, int32_t step, dc_step & ev);

    llama_model *             model_;
    const llama_vocab *       vocab_;
    sequence_context          exact_{ "llama.cpp context" };
    sequence_context          cached_{ "cached llama.cpp context" };  // KV cache, flash attention off
    bool                      kv_supported_;                          // dream and llada (our llama.cpp patch)
    int32_t                   n_threads_;
    int32_t                   threads_now_;  // the running request's threads (dc_params::threads)
    int32_t                   n_vocab_;
    bool                      shift_;
    llama_token               mask_;
    std::vector<llama_token>  end_tokens_;   // end-of-generation and pad: "shorter" inside a hole
    std::vector<char>         line_breaks_;  // per token: its text holds a line break (breaks_line)
    llama_token               expand_ = LLAMA_TOKEN_NULL;
    llama_token               delete_ = LLAMA_TOKEN_NULL;
    const std::atomic<bool> * cancel_ = nullptr;  // read by llama.cpp's abort callback mid-pass
    std::vector<reuse_slot>   slots_;             // one per sequence of the cached context
    int32_t                   seq_   = 0;         // the slot (sequence) of the request being decoded
    uint64_t                  clock_ = 0;         // for least-recently-used slots
    RowSampler                sampler_;
    int64_t                   copied_ = 0;        // bytes llama.cpp copied out, summed by decode()
};

// Whether the model reads position p's logits from row p - 1 (Dream) or row p (LLaDA).
bool dc_model_shift_logits(const llama_model * model);
