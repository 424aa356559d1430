#include "engine/ir/Branches.h"

#include "engine/core/SageError.h"
#include "engine/model/Model.h"
#include "engine/runtime/InferenceSession.h"
#include "engine/tokenizer/Tokenizer.h"

#include <algorithm>
#include <numeric>

namespace sage {

std::string Branches::validUtf8(const std::string& s)
{
    std::string out;
    out.reserve(s.size());
    const auto* b = reinterpret_cast<const unsigned char*>(s.data());
    const size_t n = s.size();
    for (size_t i = 0; i < n;) {
        const unsigned char c = b[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
        bool ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; ++k) ok = (b[i + k] & 0xC0) == 0x80;
        if (ok && len > 1) {
            // Reject overlong forms, surrogates and code points above U+10FFFF.
            uint32_t cp = c & (0x7F >> len);
            for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (b[i + k] & 0x3F);
            ok = !(len == 2 && cp < 0x80) && !(len == 3 && cp < 0x800) && !(len == 4 && cp < 0x10000) &&
                 !(cp >= 0xD800 && cp <= 0xDFFF) && cp <= 0x10FFFF;
        }
        if (ok) {
            out.append(s, i, len);
            i += len;
        } else {
            out += "\xEF\xBF\xBD";
            ++i;
        }
    }
    return out;
}

std::string Branches::text(const Tokenizer* tokenizer, std::span<const int32_t> ids)
{
    if (tokenizer) return validUtf8(tokenizer->decode(ids));
    std::string s;
    for (int32_t id : ids) s += "<id " + std::to_string(id) + ">";
    return s;
}

std::string Branches::piece(const Tokenizer* tokenizer, int32_t id)
{
    return tokenizer ? validUtf8(tokenizer->pieceText(id)) : "<id " + std::to_string(id) + ">";
}

std::vector<std::vector<std::vector<int32_t>>> Branches::generate(const Model& model, cpu::ThreadPool& pool,
                                                                  std::span<const int32_t> sequence,
                                                                  std::span<const IrFlip> flips, int length,
                                                                  const std::atomic<bool>* cancel,
                                                                  const std::function<void(double)>& progress)
{
    const int64_t T = int64_t(sequence.size());
    for (const IrFlip& f : flips)
        if (f.position < 1 || f.position >= T)
            throw SageError("branches: flip position " + std::to_string(f.position) + " is outside [1, " +
                            std::to_string(T) + ")");
    const std::vector<int64_t>& eos = model.eosTokenIds();
    std::vector<size_t> order(flips.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return flips[a].position < flips[b].position; });
    size_t total = 0, done = 0;
    for (const IrFlip& f : flips) total += f.forced.size();

    std::vector<std::vector<std::vector<int32_t>>> out(flips.size());
    InferenceSession session(model, pool);
    std::vector<float> logits; // [1, V]
    const int64_t V = model.config().vocabSize;
    for (size_t oi : order) {
        const IrFlip& f = flips[oi];
        if (session.position() < f.position)
            session.forward(sequence.subspan(size_t(session.position()), size_t(f.position - session.position())),
                            false, logits, cancel);
        for (int32_t forced : f.forced) {
            // A copy of the caches at the prefix: the branch never touches the shared state.
            InferenceSession branch(session);
            std::vector<int32_t> toks{forced};
            int32_t next = forced;
            for (int k = 0; k < length; ++k) {
                if (std::find(eos.begin(), eos.end(), int64_t(next)) != eos.end()) break;
                if (branch.position() + 1 > branch.maxContext()) break;
                branch.forward(std::span<const int32_t>(&next, 1), false, logits, cancel);
                next = int32_t(std::max_element(logits.begin(), logits.begin() + V) - logits.begin());
                toks.push_back(next);
            }
            out[oi].push_back(std::move(toks));
            ++done;
            if (progress) progress(double(done) / double(std::max<size_t>(total, 1)));
        }
    }
    return out;
}

IrBranch Branches::describe(const Tokenizer* tokenizer, std::span<const int32_t> sequence, int64_t position,
                            std::span<const int32_t> branch, float forcedProbability, int rejoinMatch)
{
    IrBranch b;
    b.forcedToken = branch.empty() ? -1 : branch[0];
    b.forcedText = piece(tokenizer, b.forcedToken);
    b.forcedProbability = forcedProbability;
    b.tokens.assign(branch.begin(), branch.end());
    b.text = text(tokenizer, branch);
    const int64_t T = int64_t(sequence.size());
    const int64_t n = std::min<int64_t>(int64_t(branch.size()), T - position);
    b.originalText = text(tokenizer, sequence.subspan(size_t(position), size_t(std::max<int64_t>(n, 0))));
    const size_t common =
        size_t(std::mismatch(b.text.begin(), b.text.end(), b.originalText.begin(), b.originalText.end()).first -
               b.text.begin());
    b.divergesAtChar = int64_t(common);

    // Changed fraction over the continuation after the forced token, where the original has tokens.
    int64_t compared = 0, differ = 0;
    for (int64_t k = 1; k < int64_t(branch.size()) && position + k < T; ++k) {
        ++compared;
        if (branch[size_t(k)] != sequence[size_t(position + k)]) ++differ;
    }
    b.changed = compared > 0 ? float(differ) / float(compared) : 0.0f;

    // Rejoin: m consecutive branch tokens equal to a run of the original continuation at any offset >= 1.
    const int64_t m = std::max(1, rejoinMatch);
    for (int64_t k = 1; k + m <= int64_t(branch.size()) && b.rejoinsAt < 0; ++k)
        for (int64_t j = 1; position + j + m <= T; ++j)
            if (std::equal(branch.begin() + k, branch.begin() + k + m, sequence.begin() + position + j)) {
                b.rejoinsAt = k;
                b.rejoinsOriginalAt = j;
                break;
            }
    return b;
}

} // namespace sage
