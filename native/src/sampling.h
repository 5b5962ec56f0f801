// One logits row to a token and its confidence, as Dream's reference samples (docs/runtime.md): the host scan,
// with vector maths for the greedy case, and the one definition of each algorithm's confidence, which the rows
// llama.cpp reduces on its device (native/patches/0002) go through too.
#pragma once

#include "params.h"

#include <random>
#include <vector>

// A greedy pick from a row's argmax `top1`, its logit `mx`, the second largest logit, z = sum exp(x - mx) and
// s = sum exp(x - mx) * (x - mx) (the entropy is log z - s / z; computed only when `need_entropy`).
dc_pick
dc_greedy_pick(dc_algorithm algorithm, llama_token top1, float mx, float second, double z, double s, bool need_entropy);

class RowSampler {
  public:
    explicit RowSampler(int32_t n_vocab);

    // The token for one row of raw logits under p's temperature, top-k and top-p, with its confidence (and the
    // entropy of the kept set when `need_entropy` or the algorithm ranks by it). Writes the row only to apply a
    // temperature.
    dc_pick sample(float * row, const dc_params & p, bool need_entropy, std::mt19937 & rng);

  private:
    // sample()'s steps: the kept set's size after top-k and top-p (top_p < 1 or top_k < n_vocab), its members in
    // order_, best first; and the draw of a member (its index) from probs_[0, m), which sum to z.
    int32_t keep(const float * row, int32_t top_k, float top_p);
    int32_t draw(int32_t m, double z, std::mt19937 & rng) const;

    int32_t              n_vocab_;
    std::vector<int32_t> order_;  // scratch for top-k / top-p
    std::vector<double>  probs_;
};
