#pragma once

#include "engine/ir/IrReport.h"

#include <string>

namespace sage {

// The report as Markdown: run record, faithfulness, the decision-point tree as a nested list, then one section
// per decision point (alternatives, evidence, branches, explanation).
class ReportMarkdown
{
public:
    static std::string write(const IrReport& report);
};

} // namespace sage
