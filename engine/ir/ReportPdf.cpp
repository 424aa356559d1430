#include "engine/ir/ReportPdf.h"

#include "engine/ir/PdfWriter.h"
#include "engine/ir/ReportText.h"

#include <algorithm>
#include <cmath>

namespace sage {

namespace {

// Flowing layout on A4 pages with a cursor; starts a new page when the next block does not fit.
class Layout
{
public:
    static constexpr double kMargin = 50, kBottom = 800;
    PdfWriter pdf;
    double y = kMargin;

    void need(double h)
    {
        if (y + h > kBottom) {
            pdf.newPage();
            y = kMargin;
        }
    }
    void heading(const std::string& s, double size = 14)
    {
        need(size * 2.2);
        y += size * 0.6;
        pdf.text(kMargin, y + size, size, s, true);
        y += size * 1.6;
    }
    // Word-wrapped paragraph.
    void paragraph(const std::string& s, double size = 9.5, bool bold = false)
    {
        const double width = PdfWriter::kWidth - 2 * kMargin;
        std::string line;
        auto flush = [&] {
            need(size * 1.35);
            pdf.text(kMargin, y + size, size, line, bold);
            y += size * 1.35;
            line.clear();
        };
        size_t i = 0;
        while (i < s.size()) {
            size_t j = s.find_first_of(" \n", i);
            if (j == std::string::npos) j = s.size();
            std::string word = s.substr(i, j - i);
            // Very long words are cut so that they never run off the page.
            while (PdfWriter::textWidth(word, size) > width && word.size() > 1) {
                if (!line.empty()) flush();
                size_t cut = word.size() / 2;
                line = word.substr(0, cut);
                flush();
                word = word.substr(cut);
            }
            const std::string candidate = line.empty() ? word : line + " " + word;
            if (PdfWriter::textWidth(candidate, size) > width && !line.empty()) {
                flush();
                line = word;
            } else {
                line = candidate;
            }
            if (j < s.size() && s[j] == '\n' && !line.empty()) flush();
            i = j + 1;
        }
        if (!line.empty()) flush();
        y += size * 0.4;
    }
};

void heatmap(Layout& L, const IrReport& r)
{
    const int64_t G = r.generatedCount(), T = int64_t(r.tokens.size());
    if (G <= 0) return;
    const int64_t maxCells = 100;
    const int64_t rowsPer = (G + maxCells - 1) / maxCells, colsPer = (T + maxCells - 1) / maxCells;
    const int64_t rows = (G + rowsPer - 1) / rowsPer, cols = (T + colsPer - 1) / colsPer;
    const double width = PdfWriter::kWidth - 2 * Layout::kMargin;
    const double cell = std::min(12.0, width / double(cols));
    L.need(double(rows) * cell + 20);
    const double x0 = Layout::kMargin, y0 = L.y;
    for (int64_t br = 0; br < rows; ++br) {
        std::vector<float> v(size_t(cols), 0.0f);
        for (int64_t g = br * rowsPer; g < std::min(G, (br + 1) * rowsPer); ++g)
            for (int64_t p = 0; p < T; ++p)
                v[size_t(p / colsPer)] = std::max(v[size_t(p / colsPer)], r.relevanceAt(g, p));
        const float mx = *std::max_element(v.begin(), v.end());
        for (int64_t bc = 0; bc < cols; ++bc) {
            if (v[size_t(bc)] <= 0 || mx <= 0) continue;
            const double t = std::sqrt(double(v[size_t(bc)] / mx));
            L.pdf.rect(x0 + double(bc) * cell, y0 + double(br) * cell, cell, cell, 1 - t * (1 - 0.06),
                       1 - t * (1 - 0.25), 1 - t * (1 - 0.63));
        }
    }
    const double bx = x0 + double(r.promptLength) / double(colsPer) * cell;
    L.pdf.line(bx, y0, bx, y0 + double(rows) * cell, 0.8, 0.75, 0.19, 0.19);
    L.y = y0 + double(rows) * cell + 4;
    L.paragraph("Rows: generated tokens; columns: source positions (red line: end of the prompt); shading relative "
                "to each row's largest relevance.",
                8);
}

void tree(Layout& L, const IrReport& r)
{
    const auto& dps = r.decisionPoints;
    const std::vector<int> depth = ReportText::depths(r);
    const double rowH = 18, colW = 70;
    size_t i = 0;
    while (i < dps.size()) {
        // One page's worth of rows at a time; edges to a parent on an earlier page are drawn from the top.
        L.need(rowH * 2);
        const double top = L.y;
        const size_t first = i;
        for (; i < dps.size() && L.y + rowH <= Layout::kBottom; ++i) {
            const double x = Layout::kMargin + colW * depth[i], y = L.y + rowH / 2;
            if (dps[i].parent >= 0) {
                const size_t p = size_t(dps[i].parent);
                const double px = Layout::kMargin + colW * depth[p] + 4;
                const double py = p >= first ? top + rowH * double(p - first) + rowH / 2 : top;
                L.pdf.line(px, py, px, y, 0.8, 0.44, 0.5, 0.56);
                L.pdf.line(px, y, x, y, 0.8, 0.44, 0.5, 0.56);
            }
            L.pdf.rect(x, y - 4, 8, 8, 0.13, 0.31, 0.63);
            std::string label = "#";
            label += std::to_string(dps[i].id);
            label += " \"";
            label += dps[i].text;
            label += "\" at ";
            label += std::to_string(dps[i].position);
            label += " (p ";
            label += ReportText::number(dps[i].probability);
            label += ")";
            L.pdf.text(x + 12, y + 3.5, 9, label);
            L.y += rowH;
        }
        if (i < dps.size()) {
            L.pdf.newPage();
            L.y = Layout::kMargin;
        }
    }
    L.y += 6;
}

} // namespace

std::string ReportPdf::write(const IrReport& r)
{
    Layout L;
    L.heading("Inverse Reasoning report", 18);
    for (const auto& [k, v] : ReportText::runRecord(r)) L.paragraph(k + ": " + v, 9.5);
    L.heading("Generated text");
    L.paragraph(ReportText::generatedText(r), 9);
    L.heading("Faithfulness");
    L.paragraph(ReportText::faithfulnessSentence(r));
    L.heading("Relevance");
    heatmap(L, r);
    L.heading("Decision tree");
    if (r.decisionPoints.empty())
        L.paragraph("No decision points: no contested step that later tokens depend on.");
    else
        tree(L, r);
    for (const IrDecisionPoint& p : r.decisionPoints) {
        L.heading("Decision point #" + std::to_string(p.id) + ": \"" + p.text + "\" at position " +
                      std::to_string(p.position),
                  12);
        L.paragraph(p.explanation);
        std::string alts = "Chosen \"" + p.text + "\" " + ReportText::number(p.probability, 3) + "; alternatives: ";
        for (size_t i = 0; i < p.alternatives.size(); ++i)
            alts += (i ? ", \"" : "\"") + p.alternatives[i].text + "\" " +
                    ReportText::number(p.alternatives[i].probability, 3);
        L.paragraph(alts + ". Entropy " + ReportText::number(p.entropy, 3) + " nats, margin " +
                    ReportText::number(p.margin, 3) + ", influence " + ReportText::number(p.influence) + ".");
        L.paragraph("Sources: " + ReportText::sourcesLine(p));
        L.paragraph("Loops and streams: " + ReportText::loopsLine(p));
        L.paragraph("Heads: " + ReportText::carriersLine(p));
        if (!p.evidence.experts.empty()) L.paragraph("Experts: " + ReportText::expertsLine(p));
        for (const IrBranch& b : p.branches) L.paragraph("Branch: " + ReportText::branchLine(b));
        if (!p.branches.empty()) L.paragraph("Original continuation: \"" + p.branches[0].originalText + "\"");
    }
    return L.pdf.finish();
}

} // namespace sage
