#include "engine/ir/Explanation.h"

#include <algorithm>
#include <cstdio>
#include <set>

namespace sage {

namespace {

std::string prob(float p)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", double(p));
    return buf;
}

std::string percent(float f)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f%%", double(f) * 100.0);
    return buf;
}

std::string quoted(const std::string& s)
{
    return "`" + s + "`";
}

std::string joinAnd(const std::vector<std::string>& items)
{
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out += i + 1 == items.size() ? " and " : ", ";
        out += items[i];
    }
    return out;
}

} // namespace

std::string Explanation::sourcePhrase(const IrDecisionPoint& point, const IrReport& report)
{
    const auto& src = point.evidence.sources;
    if (src.empty()) return {};
    std::set<int64_t> top;
    for (const IrSource& s : src) top.insert(s.position);
    int64_t a = src[0].position, b = src[0].position;
    while (top.count(a - 1)) --a;
    while (top.count(b + 1)) ++b;
    std::string text;
    for (int64_t p = a; p <= b; ++p) text += report.tokens[size_t(p)].text;
    // Leading spaces of the first piece carry no meaning in a quote.
    const size_t first = text.find_first_not_of(' ');
    return first == std::string::npos ? text : text.substr(first);
}

std::string Explanation::explain(const IrDecisionPoint& p, const IrReport& report)
{
    std::string s = "chose " + quoted(p.text) + " (" + prob(p.probability) + ")";
    if (!p.alternatives.empty()) {
        std::vector<std::string> alts;
        for (size_t i = 0; i < p.alternatives.size() && i < 2; ++i)
            alts.push_back(quoted(p.alternatives[i].text) + " (" + prob(p.alternatives[i].probability) + ")");
        s += " over " + joinAnd(alts);
    }
    const IrEvidence& e = p.evidence;
    if (!e.sources.empty()) {
        s += "; the choice rests mostly on " + quoted(sourcePhrase(p, report)) + " (relevance " +
             prob(e.sources[0].relevance) + ")";
        std::vector<std::string> where;
        if (!e.loopShares.empty()) {
            const size_t l = size_t(std::max_element(e.loopShares.begin(), e.loopShares.end()) - e.loopShares.begin());
            where.push_back("loop " + std::to_string(l + 1) + " " + percent(e.loopShares[l]));
            if (l >= 1 && (e.globalShare > 0 || e.localShare > 0))
                where.push_back(e.localShare > e.globalShare ? "local stream " + percent(e.localShare)
                                                             : "global stream " + percent(e.globalShare));
        }
        if (!e.layers.empty())
            where.push_back("layer " + std::to_string(e.layers[0].layer) + " of loop " +
                            std::to_string(e.layers[0].loop));
        if (!e.heads.empty()) {
            // The heads of the strongest layer among the top carriers.
            std::vector<std::string> heads;
            for (const IrCarrier& h : e.heads)
                if (h.loop == e.heads[0].loop && h.layer == e.heads[0].layer &&
                    std::find(heads.begin(), heads.end(), std::to_string(h.head)) == heads.end())
                    heads.push_back(std::to_string(h.head));
            where.push_back((heads.size() == 1 ? "head " : "heads ") + joinAnd(heads) + " of layer " +
                            std::to_string(e.heads[0].layer));
        }
        if (!where.empty()) s += ", carried by " + joinAnd(where);
        if (!e.experts.empty())
            s += "; expert " + std::to_string(e.experts[0].expert) + " of layer " + std::to_string(e.experts[0].layer) +
                 " (loop " + std::to_string(e.experts[0].loop) + ") processed most of it";
    }
    if (e.loopPredictions.size() >= 2 && !e.loopPredictions.front().top.empty()) {
        const IrAlternative& l1 = e.loopPredictions.front().top[0];
        if (l1.token == p.token)
            s += "; loop 1 alone already predicted " + quoted(l1.text) + " (" + prob(l1.probability) + ")";
        else
            s += "; loop 1 alone predicted " + quoted(l1.text) + " (" + prob(l1.probability) + "), the later loop" +
                 (e.loopPredictions.size() > 2 ? "s" : "") + " changed the choice";
    }
    for (const IrBranch& b : p.branches) {
        s += ". Forcing " + quoted(b.forcedText) + " continues as " + quoted(b.text);
        if (b.rejoinsAt >= 0)
            s += ", rejoining the original after " + std::to_string(b.rejoinsAt) + " token" +
                 (b.rejoinsAt == 1 ? "" : "s");
        else
            s += ", which does not rejoin the original";
        s += " (" + percent(b.changed) + " of the continuation changes)";
    }
    if (p.parent >= 0 && p.parent < int64_t(report.decisionPoints.size()))
        s += ". It depends most on decision point #" + std::to_string(p.parent) + " (" +
             quoted(report.decisionPoints[size_t(p.parent)].text) + " at position " +
             std::to_string(report.decisionPoints[size_t(p.parent)].position) + ")";
    s += ".";
    return s;
}

} // namespace sage
