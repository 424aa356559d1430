#include "engine/ir/ReportHtml.h"

#include "engine/ir/ReportText.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace sage {

namespace {

// Relevance (as a fraction of its row's largest value) to a white-to-blue ramp.
std::string heatColour(float v)
{
    const double t = std::sqrt(std::clamp(double(v), 0.0, 1.0));
    const int r = int(255 - t * (255 - 16)), g = int(255 - t * (255 - 64)), b = int(255 - t * (255 - 160));
    char buf[16];
    std::snprintf(buf, sizeof buf, "#%02x%02x%02x", r, g, b);
    return buf;
}

// At most `bytes` bytes of s, never cutting a UTF-8 sequence.
std::string truncated(const std::string& s, size_t bytes)
{
    if (s.size() <= bytes) return s;
    size_t n = bytes;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    return s.substr(0, n);
}

std::string num(double v)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", v);
    return buf;
}

} // namespace

std::string ReportHtml::escape(const std::string& s)
{
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&#39;"; break;
        default: out += c;
        }
    }
    return out;
}

std::string ReportHtml::heatmapSvg(const IrReport& r, int maxCells, bool standalone)
{
    const int64_t G = r.generatedCount(), T = int64_t(r.tokens.size());
    if (G <= 0) return "<p>No generated tokens.</p>";
    // Large runs are max-pooled into at most maxCells x maxCells cells so the file stays small.
    const int64_t rowsPer = (G + maxCells - 1) / maxCells, colsPer = (T + maxCells - 1) / maxCells;
    const int64_t rows = (G + rowsPer - 1) / rowsPer, cols = (T + colsPer - 1) / colsPer;
    const bool labels = rowsPer == 1 && G <= 80;
    const double cell = std::clamp(720.0 / double(cols), 3.0, 16.0);
    const double left = labels ? 110 : 10, top = 10;
    const double width = left + double(cols) * cell + 10, height = top + double(rows) * cell + 24;
    std::string s = std::string(standalone ? "<svg xmlns=\"http://www.w3.org/2000/svg\"" : "<svg") +
                    " class=\"heatmap\" width=\"" + num(width) + "\" height=\"" + num(height) + "\" viewBox=\"0 0 " +
                    num(width) + " " + num(height) + "\" role=\"img\" aria-label=\"relevance heatmap\">\n";
    for (int64_t br = 0; br < rows; ++br) {
        std::vector<float> v(size_t(cols), 0.0f);
        for (int64_t g = br * rowsPer; g < std::min(G, (br + 1) * rowsPer); ++g)
            for (int64_t p = 0; p < T; ++p)
                v[size_t(p / colsPer)] = std::max(v[size_t(p / colsPer)], r.relevanceAt(g, p));
        const float mx = *std::max_element(v.begin(), v.end());
        const double y = top + double(br) * cell;
        if (labels) {
            const IrToken& t = r.tokens[size_t(r.promptLength + br)];
            s += "<text x=\"" + num(left - 4) + "\" y=\"" + num(y + cell * 0.8) +
                 "\" text-anchor=\"end\" font-size=\"10\">" + escape(truncated(t.text, 14)) + "</text>\n";
        }
        for (int64_t bc = 0; bc < cols; ++bc) {
            if (v[size_t(bc)] <= 0.0f) continue;
            s += "<rect x=\"" + num(left + double(bc) * cell) + "\" y=\"" + num(y) + "\" width=\"" + num(cell) +
                 "\" height=\"" + num(cell) + "\" fill=\"" + heatColour(mx > 0 ? v[size_t(bc)] / mx : 0) +
                 "\"><title>" +
                 (labels ? "token " + std::to_string(r.promptLength + br) + " &lt;- position " +
                               std::to_string(bc * colsPer) + ": "
                         : std::string()) +
                 ReportText::number(v[size_t(bc)], 4) + "</title></rect>\n";
        }
    }
    // The prompt / generated boundary.
    const double bx = left + double(r.promptLength) / double(colsPer) * cell;
    s += "<line x1=\"" + num(bx) + "\" y1=\"" + num(top) + "\" x2=\"" + num(bx) + "\" y2=\"" +
         num(top + double(rows) * cell) + "\" stroke=\"#c03030\" stroke-width=\"1\"/>\n";
    s += "<text x=\"" + num(left) + "\" y=\"" + num(height - 6) +
         "\" font-size=\"10\">source position &#8594; (red line: end of prompt); rows: generated tokens</text>\n";
    s += "</svg>\n";
    return s;
}

std::string ReportHtml::treeSvg(const IrReport& r, bool standalone)
{
    const auto& dps = r.decisionPoints;
    if (dps.empty()) return "<p>No decision points.</p>";
    const std::vector<int> depth = ReportText::depths(r);
    const double rowH = 28, colW = 150, w = 40 + colW * (1 + *std::max_element(depth.begin(), depth.end())) + 120;
    const double h = 20 + rowH * double(dps.size());
    std::string s = std::string(standalone ? "<svg xmlns=\"http://www.w3.org/2000/svg\"" : "<svg") +
                    " class=\"tree\" width=\"" + num(w) + "\" height=\"" + num(h) + "\" viewBox=\"0 0 " + num(w) + " " +
                    num(h) + "\" role=\"img\" aria-label=\"decision tree\">\n";
    auto nodeX = [&](size_t i) { return 20 + colW * depth[i]; };
    auto nodeY = [&](size_t i) { return 20 + rowH * double(i); };
    for (size_t i = 0; i < dps.size(); ++i)
        if (dps[i].parent >= 0) {
            const size_t p = size_t(dps[i].parent);
            s += "<path d=\"M" + num(nodeX(p) + 6) + " " + num(nodeY(p) + 6) + " V" + num(nodeY(i)) + " H" +
                 num(nodeX(i)) + "\" fill=\"none\" stroke=\"#708090\" stroke-width=\"1.5\"/>\n";
        }
    for (size_t i = 0; i < dps.size(); ++i) {
        const IrDecisionPoint& p = dps[i];
        s += "<a href=\"#dp" + std::to_string(p.id) + "\"><circle cx=\"" + num(nodeX(i) + 6) + "\" cy=\"" +
             num(nodeY(i)) + "\" r=\"6\" fill=\"#2050a0\"/><text x=\"" + num(nodeX(i) + 16) + "\" y=\"" +
             num(nodeY(i) + 4) + "\" font-size=\"12\">#" + std::to_string(p.id) + " " + escape(p.text) + " (" +
             ReportText::number(p.probability) + ")</text></a>\n";
    }
    s += "</svg>\n";
    return s;
}

std::string ReportHtml::write(const IrReport& r)
{
    std::string h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
                    "<title>Inverse Reasoning report</title>\n<style>\n"
                    "body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#202020}\n"
                    "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #c8c8c8;padding:2px 8px;"
                    "text-align:left}\n"
                    "code,pre{background:#f2f2f2;font-family:monospace}pre{padding:0.5em;white-space:pre-wrap}\n"
                    ".dp{border-top:2px solid #2050a0;margin-top:1.5em}.explain{font-style:italic}\n"
                    "</style>\n</head>\n<body>\n<h1>Inverse Reasoning report</h1>\n<table class=\"run\">\n";
    for (const auto& [k, v] : ReportText::runRecord(r))
        h += "<tr><th>" + escape(k) + "</th><td>" + escape(v) + "</td></tr>\n";
    h += "</table>\n<h2>Generated text</h2>\n<pre>" + escape(ReportText::generatedText(r)) + "</pre>\n";
    h += "<h2>Faithfulness</h2>\n<p>" + escape(ReportText::faithfulnessSentence(r)) + "</p>\n";
    h += "<h2>Relevance</h2>\n<p>Each row is a generated token; each cell its relevance over an earlier position, "
         "shaded relative to the row's largest value.</p>\n" +
         heatmapSvg(r);
    h += "<h2>Decision tree</h2>\n" + treeSvg(r);
    for (const IrDecisionPoint& p : r.decisionPoints) {
        h += "<section class=\"dp\" id=\"dp" + std::to_string(p.id) + "\">\n<h2>Decision point #" +
             std::to_string(p.id) + ": <code>" + escape(p.text) + "</code> at position " + std::to_string(p.position) +
             "</h2>\n";
        h += "<p class=\"explain\">" + escape(p.explanation) + "</p>\n";
        h += "<table><tr><th></th><th>token</th><th>probability</th></tr>\n<tr><td>chosen</td><td><code>" +
             escape(p.text) + "</code></td><td>" + ReportText::number(p.probability, 3) + "</td></tr>\n";
        for (const IrAlternative& a : p.alternatives)
            h += "<tr><td>alternative</td><td><code>" + escape(a.text) + "</code></td><td>" +
                 ReportText::number(a.probability, 3) + "</td></tr>\n";
        h += "</table>\n<p>Entropy " + ReportText::number(p.entropy, 3) + " nats, margin " +
             ReportText::number(p.margin, 3) + ", influence " + ReportText::number(p.influence) +
             (p.parent >= 0
                  ? ", parent <a href=\"#dp" + std::to_string(p.parent) + "\">#" + std::to_string(p.parent) + "</a>"
                  : ", a root") +
             ".</p>\n<ul>\n";
        h += "<li><b>Sources</b>: " + escape(ReportText::sourcesLine(p)) + "</li>\n";
        h += "<li><b>Loops and streams</b>: " + escape(ReportText::loopsLine(p)) + "</li>\n";
        h += "<li><b>Heads</b>: " + escape(ReportText::carriersLine(p)) + "</li>\n";
        if (!p.evidence.experts.empty()) h += "<li><b>Experts</b>: " + escape(ReportText::expertsLine(p)) + "</li>\n";
        h += "</ul>\n";
        if (!p.branches.empty()) {
            h += "<table><tr><th>forced</th><th>branch</th><th>rejoins</th><th>changed</th></tr>\n";
            for (const IrBranch& b : p.branches)
                h += "<tr><td><code>" + escape(b.forcedText) + "</code></td><td><code>" + escape(b.text) +
                     "</code></td><td>" + (b.rejoinsAt >= 0 ? "at token " + std::to_string(b.rejoinsAt) : "no") +
                     "</td><td>" + ReportText::percent(b.changed) + "</td></tr>\n";
            h += "</table>\n<p>Original continuation: <code>" + escape(p.branches[0].originalText) + "</code></p>\n";
        }
        h += "</section>\n";
    }
    h += "</body>\n</html>\n";
    return h;
}

} // namespace sage
