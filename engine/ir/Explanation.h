#pragma once

#include "engine/ir/IrReport.h"

#include <string>

namespace sage {

// Plain-language explanation of a decision point, generated only from the report's data (docs/ir.md,
// "Explanations"), e.g. "chose `return` (0.41) over `if` (0.33); the choice rests mostly on `def fib` ...".
class Explanation
{
public:
    static std::string explain(const IrDecisionPoint& point, const IrReport& report);
    // The text of the most relevant source phrase: the top source extended over adjacent top sources.
    static std::string sourcePhrase(const IrDecisionPoint& point, const IrReport& report);
};

} // namespace sage
