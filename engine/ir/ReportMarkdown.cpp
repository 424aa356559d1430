#include "engine/ir/ReportMarkdown.h"

#include "engine/ir/ReportText.h"

namespace sage {

namespace {

// Text inside inline code: backticks would end it, newlines would break the line.
std::string code(const std::string& s)
{
    std::string out;
    for (char c : s) {
        if (c == '`')
            out += '\'';
        else if (c == '\n')
            out += "\\n";
        else if (c == '|')
            out += "\\|";
        else
            out += c;
    }
    return "`` " + out + " ``";
}

std::string plain(const std::string& s)
{
    std::string out;
    for (char c : s) {
        if (c == '\n')
            out += ' ';
        else if (c == '|')
            out += "\\|";
        else
            out += c;
    }
    return out;
}

} // namespace

std::string ReportMarkdown::write(const IrReport& r)
{
    std::string md = "# Inverse Reasoning report\n\n";
    for (const auto& [k, v] : ReportText::runRecord(r)) md += "- **" + k + "**: " + plain(v) + "\n";
    md += "\n## Generated text\n\n```\n" + ReportText::generatedText(r) + "\n```\n\n";
    md += "## Faithfulness\n\n" + ReportText::faithfulnessSentence(r) + "\n\n";
    md += "## Decision tree\n\n";
    if (r.decisionPoints.empty()) md += "No decision points: no contested step that later tokens depend on.\n";
    const std::vector<int> depth = ReportText::depths(r);
    for (size_t i = 0; i < r.decisionPoints.size(); ++i) {
        const IrDecisionPoint& p = r.decisionPoints[i];
        md += std::string(size_t(depth[i]) * 2, ' ') + "- #" + std::to_string(p.id) + " " + code(p.text) +
              " at position " + std::to_string(p.position) + " (p " + ReportText::number(p.probability) +
              ", influence " + ReportText::number(p.influence) + ")\n";
    }
    md += "\n";
    for (const IrDecisionPoint& p : r.decisionPoints) {
        md += "## Decision point #" + std::to_string(p.id) + ": " + code(p.text) + " at position " +
              std::to_string(p.position) + "\n\n";
        md += plain(p.explanation) + "\n\n";
        md += "| | token | probability |\n|---|---|---|\n";
        md += "| chosen | " + code(p.text) + " | " + ReportText::number(p.probability, 3) + " |\n";
        for (const IrAlternative& a : p.alternatives)
            md += "| alternative | " + code(a.text) + " | " + ReportText::number(a.probability, 3) + " |\n";
        md += "\nEntropy " + ReportText::number(p.entropy, 3) + " nats, margin " + ReportText::number(p.margin, 3) +
              ", influence " + ReportText::number(p.influence, 2) + " (from position " +
              std::to_string(p.influencedBy) + ")" +
              (p.parent >= 0 ? ", parent #" + std::to_string(p.parent) : ", a root") + ".\n\n";
        md += "- **Sources**: " + plain(ReportText::sourcesLine(p)) + "\n";
        md += "- **Loops and streams**: " + plain(ReportText::loopsLine(p)) + "\n";
        md += "- **Heads**: " + ReportText::carriersLine(p) + "\n";
        if (!p.evidence.experts.empty()) md += "- **Experts**: " + ReportText::expertsLine(p) + "\n";
        md += "\n";
        if (!p.branches.empty()) {
            md += "| forced | branch | rejoins | changed |\n|---|---|---|---|\n";
            for (const IrBranch& b : p.branches)
                md += "| " + code(b.forcedText) + " | " + code(b.text) + " | " +
                      (b.rejoinsAt >= 0 ? "at token " + std::to_string(b.rejoinsAt) : "no") + " | " +
                      ReportText::percent(b.changed) + " |\n";
            md += "\nOriginal continuation: " + code(p.branches[0].originalText) + "\n\n";
        }
    }
    return md;
}

} // namespace sage
