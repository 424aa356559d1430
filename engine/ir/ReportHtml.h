#pragma once

#include "engine/ir/IrReport.h"

#include <string>

namespace sage {

// The report as one self-contained HTML file: inline CSS, inline SVG relevance heatmap and decision tree, no
// scripts, no external references (it opens offline and from an e-mail attachment).
class ReportHtml
{
public:
    static std::string write(const IrReport& report);
    // Heatmap and tree as SVG elements; standalone adds the SVG namespace for use as an .svg file (inline SVG in
    // HTML needs none, which keeps the page free of any URL).
    static std::string heatmapSvg(const IrReport& report, int maxCells = 160, bool standalone = false);
    static std::string treeSvg(const IrReport& report, bool standalone = false);
    static std::string escape(const std::string& text);
};

} // namespace sage
