#pragma once

#include "engine/ir/IrReport.h"

#include <string>
#include <vector>

namespace sage {

// Text pieces shared by the Markdown, HTML and PDF reports, so that all three say the same thing.
class ReportText
{
public:
    static std::string number(double v, int decimals = 2);
    static std::string percent(double v);
    // Header lines "label: value" recording model identity, prompt, sampling, seed, engine version and date.
    static std::vector<std::pair<std::string, std::string>> runRecord(const IrReport& report);
    static std::string faithfulnessSentence(const IrReport& report);
    // Generated text of the run (the decoded pieces after the prompt).
    static std::string generatedText(const IrReport& report);
    static std::string promptText(const IrReport& report);
    // Depth of each decision point in the tree (roots 0), by id.
    static std::vector<int> depths(const IrReport& report);
    // One-line evidence summaries.
    static std::string sourcesLine(const IrDecisionPoint& p);
    static std::string carriersLine(const IrDecisionPoint& p);
    static std::string loopsLine(const IrDecisionPoint& p);
    static std::string expertsLine(const IrDecisionPoint& p);
    static std::string branchLine(const IrBranch& b);
};

} // namespace sage
