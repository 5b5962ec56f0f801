#include "sampling.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

namespace {

// exp(x) for x <= 0, eight at a time with GCC/Clang vector extensions (Cephes' expf polynomial, ~1 ulp; inputs
// below -87 give exp(-87) ~ 1.6e-38 instead of a denormal, which no sum of probabilities can tell apart).
typedef float   v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

inline v8f v8_splat(float x) {
    return v8f{ x, x, x, x, x, x, x, x };
}

inline v8f v8_exp(v8f x) {
    x                 = x < v8_splat(-87.0f) ? v8_splat(-87.0f) : x;
    const v8f magic   = v8_splat(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
    const v8f shifted = x * v8_splat(1.44269504088896341f) + magic;
    const v8f fx      = shifted - magic;
    const v8i n       = (v8i) shifted - (v8i) magic;
    const v8f r       = x - fx * v8_splat(0.693359375f) - fx * v8_splat(-2.12194440e-4f);
    v8f       y       = v8_splat(1.9875691500E-4f);
    y                 = y * r + v8_splat(1.3981999507E-3f);
    y                 = y * r + v8_splat(8.3334519073E-3f);
    y                 = y * r + v8_splat(4.1665795894E-2f);
    y                 = y * r + v8_splat(1.6666665459E-1f);
    y                 = y * r + v8_splat(5.0000001201E-1f);
    y                 = y * r * r + r + v8_splat(1.0f);
    return y * (v8f) ((n + 127) << 23);
}

// The first index of the largest value and the second-largest value (the largest once that index is left
// out) of a row, eight lanes at a time: a scalar top-two scan is bound by its compare chain (~4x slower).
void top_two(const float * row, int32_t n, int32_t & top1, float & second) {
    const float ninf = -std::numeric_limits<float>::infinity();
    v8f         m1 = v8_splat(ninf), m2 = v8_splat(ninf);
    v8i         idx = v8i{ 0, 0, 0, 0, 0, 0, 0, 0 };
    v8i         cur = v8i{ 0, 1, 2, 3, 4, 5, 6, 7 };
    int32_t     i   = 0;
    for (; i + 8 <= n; i += 8) {
        v8f x;
        std::memcpy(&x, row + i, sizeof(x));
        const v8i gt = x > m1;
        const v8f lo = x < m1 ? x : m1;  // min(x, m1): what drops to second place
        m2           = lo > m2 ? lo : m2;
        m1           = gt ? x : m1;
        idx          = gt ? cur : idx;
        cur += 8;
    }
    float   vals[24];
    int32_t ids[24];
    int32_t k = 0;
    for (int j = 0; j < 8 && i > 0; j++) {
        vals[k] = m1[j], ids[k++] = idx[j];
        vals[k] = m2[j], ids[k++] = -1;  // never a top-1 candidate: its lane's m1 is at least as large, earlier
    }
    for (; i < n; i++) {
        vals[k] = row[i], ids[k++] = i;
    }
    int32_t best = -1;
    for (int32_t j = 0; j < k; j++) {
        if (ids[j] >= 0 && (best < 0 || vals[j] > vals[best] || (vals[j] == vals[best] && ids[j] < ids[best]))) {
            best = j;
        }
    }
    top1   = ids[best];
    second = ninf;
    for (int32_t j = 0; j < k; j++) {
        if (j != best && vals[j] > second) {
            second = vals[j];
        }
    }
}

// Over a logits row: z = sum exp(x - mx) and, when wanted, s = sum exp(x - mx) * (x - mx), so that
// the entropy is log z - s / z. Float lanes, summed into doubles every 256 elements.
void exp_sums(const float * row, int32_t n, float mx, bool with_s, double & z_out, double & s_out) {
    double    z = 0, s = 0;
    const v8f m = v8_splat(mx);
    int32_t   i = 0;
    while (i + 8 <= n) {
        v8f           vz = v8_splat(0.0f), vs = v8_splat(0.0f);
        const int32_t end = std::min(n - n % 8, i + 256);
        for (; i < end; i += 8) {
            v8f x;
            std::memcpy(&x, row + i, sizeof(x));
            const v8f d = x - m;
            const v8f e = v8_exp(d);
            vz += e;
            if (with_s) {
                vs += e * d;
            }
        }
        for (int j = 0; j < 8; j++) {
            z += vz[j];
            s += vs[j];
        }
    }
    for (; i < n; i++) {
        const double d = (double) row[i] - mx;
        const double e = std::exp(d);
        z += e;
        s += e * d;
    }
    z_out = z;
    s_out = s;
}

// What `algorithm` ranks a position by (Dream's): the chosen token's probability (maskgit_plus), the top two
// probabilities' margin (topk_margin), minus the entropy (entropy); origin ranks nothing.
double confidence(dc_algorithm algorithm, double p_token, double margin, double entropy) {
    switch (algorithm) {
        case dc_algorithm::origin:
            return 0;
        case dc_algorithm::maskgit_plus:
            return p_token;
        case dc_algorithm::topk_margin:
            return margin;
        case dc_algorithm::entropy:
            return -entropy;
    }
    return 0;
}

}  // namespace

dc_pick dc_greedy_pick(dc_algorithm algorithm,
                       llama_token  top1,
                       float        mx,
                       float        second,
                       double       z,
                       double       s,
                       bool         need_entropy) {
    const double entropy = need_entropy ? std::log(z) - s / z : 0.0;
    // second = -inf (a one-token vocabulary): the margin is 1 / z.
    return { top1, confidence(algorithm, 1.0 / z, (1.0 - std::exp((double) second - mx)) / z, entropy), entropy };
}

RowSampler::RowSampler(int32_t n_vocab) : n_vocab_(n_vocab), probs_(n_vocab) {}

int32_t RowSampler::keep(const float * row, int32_t top_k, float top_p) {
    const int32_t n = n_vocab_;
    order_.resize(n);
    std::iota(order_.begin(), order_.end(), 0);
    auto by_logit = [row](int32_t a, int32_t b) {
        return row[a] > row[b] || (row[a] == row[b] && a < b);
    };
    if (top_p >= 1.0f) {
        std::partial_sort(order_.begin(), order_.begin() + top_k, order_.end(), by_logit);
        return top_k;
    }
    std::sort(order_.begin(), order_.end(), by_logit);
    const double mx = row[order_[0]];
    double       z  = 0;
    for (int32_t i = 0; i < n; i++) {
        z += std::exp((double) row[order_[i]] - mx);
    }
    // Remove a token once the mass before it already exceeds top_p (the first always stays).
    double  cum = 0;
    int32_t m   = n;
    for (int32_t i = 0; i < n; i++) {
        if (cum > top_p) {
            m = i;
            break;
        }
        cum += std::exp((double) row[order_[i]] - mx) / z;
    }
    return std::min(m, top_k);
}

int32_t RowSampler::draw(int32_t m, double z, std::mt19937 & rng) const {
    const double u   = std::uniform_real_distribution<double>(0.0, 1.0)(rng) * z;
    double       cum = 0;
    for (int32_t i = 0; i < m; i++) {
        cum += probs_[i];
        if (u < cum) {
            return i;
        }
    }
    return m - 1;
}

dc_pick RowSampler::sample(float * row, const dc_params & p, bool need_entropy, std::mt19937 & rng) {
    const int32_t n      = n_vocab_;
    const bool    greedy = p.temperature <= 0.0f;
    need_entropy         = need_entropy || p.algorithm == dc_algorithm::entropy;

    if (greedy && (p.top_k <= 0 || p.top_k >= n) && p.top_p >= 1.0f) {
        // Greedy over the whole vocabulary: the top two by one scan, then the normaliser (and the entropy) by
        // one vectorised pass of exp. No copy, sort or stored softmax.
        llama_token top1   = 0;
        float       second = 0;
        top_two(row, n, top1, second);
        const float mx = row[top1];
        double      z = 0, s = 0;
        exp_sums(row, n, mx, need_entropy, z, s);
        return dc_greedy_pick(p.algorithm, top1, mx, second, z, s, need_entropy);
    }
    if (!greedy) {
        for (int32_t i = 0; i < n; i++) {
            row[i] /= p.temperature;
        }
    }

    // Kept set, as in Dream: top-p over the whole distribution, then top-k. `id(i)` is its i-th member.
    const int32_t top_k    = (p.top_k > 0 && p.top_k < n) ? p.top_k : n;
    const bool    filtered = top_k < n || p.top_p < 1.0f;
    const int32_t m        = filtered ? keep(row, top_k, p.top_p) : n;
    auto          id       = [&](int32_t i) {
        return filtered ? order_[i] : i;
    };

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

    const llama_token token = greedy ? top1 : id(draw(m, z, rng));

    // sum(p * log p) over the kept set: minus the entropy (Dream's sign for the entropy algorithm).
    double neg_entropy = 0;
    if (need_entropy) {
        for (int32_t i = 0; i < m; i++) {
            const double pi = probs_[i] / z;
            neg_entropy += pi * std::log(pi + 1e-10);
        }
    }
    const double margin = (1.0 - (top2 >= 0 ? std::exp((double) row[top2] - mx) : 0.0)) / z;
    return { token, confidence(p.algorithm, std::exp((double) row[token] - mx) / z, margin, -neg_entropy),
             -neg_entropy };
}
