#pragma once

#include "engine/ir/IrReport.h"

#include <string>

namespace sage {

// The report as a PDF (PdfWriter): run record, faithfulness, the relevance heatmap as filled cells, the decision
// tree as lines and nodes, then the decision points with their evidence, branches and explanations.
class ReportPdf
{
public:
    static std::string write(const IrReport& report);
};

} // namespace sage
