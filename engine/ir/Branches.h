#pragma once

#include "engine/ir/IrReport.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace sage {

class Model;
class Tokenizer;
namespace cpu {
class ThreadPool;
}

// One place to branch: the sequence position and the tokens to force there, one branch each.
struct IrFlip {
    int64_t position = 0;
    std::vector<int32_t> forced;
};

// Counterfactual branches (docs/ir.md, "Branches"): at each flip position d the session state after the prefix
// [0, d) is copied (one incremental pass over the sequence serves every flip, so no prefix is recomputed), the
// forced token is fed, and `length` greedy tokens follow.
class Branches
{
public:
    // Returns, per flip (in the order given) and per forced token, the branch tokens: the forced token first.
    // Generation of a branch stops early after an end-of-sequence id or at the context limit.
    static std::vector<std::vector<std::vector<int32_t>>> generate(const Model& model, cpu::ThreadPool& pool,
                                                                   std::span<const int32_t> sequence,
                                                                   std::span<const IrFlip> flips, int length,
                                                                   const std::atomic<bool>* cancel = nullptr,
                                                                   const std::function<void(double)>& progress = {});

    // Describes a branch against the original sequence: texts, divergence, rejoin and changed fraction.
    static IrBranch describe(const Tokenizer* tokenizer, std::span<const int32_t> sequence, int64_t position,
                             std::span<const int32_t> branch, float forcedProbability, int rejoinMatch);

    // Text of ids: the tokenizer's decode, or the ids as "<id N>" without a tokenizer.
    static std::string text(const Tokenizer* tokenizer, std::span<const int32_t> ids);
    static std::string piece(const Tokenizer* tokenizer, int32_t id);
    // `s` with every invalid UTF-8 sequence replaced by U+FFFD: a branch may stop inside a character, and the
    // reports (JSON, HTML) need valid text.
    static std::string validUtf8(const std::string& s);
};

} // namespace sage
