#include "engine/ir/ReportText.h"

#include <cstdio>

namespace sage {

std::string ReportText::number(double v, int decimals)
{
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

std::string ReportText::percent(double v)
{
    return number(v * 100.0, 0) + "%";
}

std::vector<std::pair<std::string, std::string>> ReportText::runRecord(const IrReport& r)
{
    const IrRunInfo& run = r.run;
    const SamplingParams& s = run.sampling;
    std::string sampling = s.greedy() ? "greedy" : "temperature " + number(s.temperature, 3);
    if (s.topK > 0) sampling += ", top-k " + std::to_string(s.topK);
    if (s.topP < 1) sampling += ", top-p " + number(s.topP, 3);
    if (s.minP > 0) sampling += ", min-p " + number(s.minP, 3);
    if (s.repetitionPenalty != 1) sampling += ", repetition penalty " + number(s.repetitionPenalty, 3);
    sampling += ", max " + std::to_string(run.maxNewTokens) + " tokens";
    return {{"Model", run.modelName + " (" + run.architecture + ")"},
            {"Model identity", "config " + run.configHash + ", weights " + run.weightHash},
            {"Prompt", promptText(r)},
            {"Sampling", sampling},
            {"Seed", std::to_string(s.seed)},
            {"Generated", std::to_string(r.generatedCount()) + " tokens (stop: " + run.stopReason + ")"},
            {"Engine", "SAGE Workbench " + run.engineVersion},
            {"Date", run.date},
            {"Time", "generate " + number(run.generateSeconds) + " s, sweep " + number(run.sweepSeconds) +
                         " s, branches " + number(run.branchSeconds) + " s"}};
}

std::string ReportText::faithfulnessSentence(const IrReport& r)
{
    const IrFaithfulness& f = r.faithfulness;
    if (f.flips == 0) return "No decision points were flipped, so there is no faithfulness figure for this run.";
    return "Flipping the " + std::to_string(f.flips) + " decision point" + (f.flips == 1 ? "" : "s") +
           " to their first runner-up changed " + percent(f.decisionChange) +
           " of the following tokens on average; flipping as many random non-decision tokens changed " +
           percent(f.randomChange) + ". Faithfulness score (difference): " + number(f.score, 3) + ".";
}

std::string ReportText::generatedText(const IrReport& r)
{
    return r.generatedText;
}

std::string ReportText::promptText(const IrReport& r)
{
    if (!r.run.promptText.empty()) return r.run.promptText;
    std::string s;
    for (size_t i = 0; i < size_t(r.promptLength); ++i) s += r.tokens[i].text;
    return s;
}

std::vector<int> ReportText::depths(const IrReport& r)
{
    std::vector<int> d(r.decisionPoints.size(), 0);
    for (size_t i = 0; i < d.size(); ++i) {
        const int64_t p = r.decisionPoints[i].parent;
        if (p >= 0 && size_t(p) < i) d[i] = d[size_t(p)] + 1;
    }
    return d;
}

std::string ReportText::sourcesLine(const IrDecisionPoint& p)
{
    std::string s;
    for (const IrSource& src : p.evidence.sources) {
        if (!s.empty()) s += ", ";
        s += "\"" + src.text + "\" @" + std::to_string(src.position) + " (" + number(src.relevance, 3) + ")";
    }
    return s;
}

std::string ReportText::carriersLine(const IrDecisionPoint& p)
{
    std::string s;
    for (const IrCarrier& c : p.evidence.heads) {
        if (!s.empty()) s += ", ";
        s += "loop " + std::to_string(c.loop) + " layer " + std::to_string(c.layer) + " head " +
             std::to_string(c.head) + " " + c.stream + " " + percent(c.share);
    }
    return s;
}

std::string ReportText::loopsLine(const IrDecisionPoint& p)
{
    const IrEvidence& e = p.evidence;
    std::string s;
    for (size_t l = 0; l < e.loopShares.size(); ++l) {
        if (!s.empty()) s += ", ";
        s += "loop " + std::to_string(l + 1) + " " + percent(e.loopShares[l]);
    }
    if (e.globalShare + e.localShare > 0)
        s += "; loops >= 2: global stream " + percent(e.globalShare) + ", local stream " + percent(e.localShare);
    for (const IrLoopPrediction& lp : e.loopPredictions)
        if (!lp.top.empty())
            s += "; after loop " + std::to_string(lp.loop) + ": \"" + lp.top[0].text + "\" (" +
                 number(lp.top[0].probability) + ")";
    return s;
}

std::string ReportText::expertsLine(const IrDecisionPoint& p)
{
    std::string s;
    for (const IrExpertShare& x : p.evidence.experts) {
        if (!s.empty()) s += ", ";
        s += "expert " + std::to_string(x.expert) + " (loop " + std::to_string(x.loop) + ", layer " +
             std::to_string(x.layer) + ") " + percent(x.share);
    }
    return s;
}

std::string ReportText::branchLine(const IrBranch& b)
{
    std::string s = "force \"" + b.forcedText + "\" (" + number(b.forcedProbability) + "): \"" + b.text +
                    "\"; diverges at character " + std::to_string(b.divergesAtChar) + "; ";
    s += b.rejoinsAt >= 0 ? "rejoins at branch token " + std::to_string(b.rejoinsAt) + " (original token " +
                                std::to_string(b.rejoinsOriginalAt) + ")"
                          : "does not rejoin";
    s += "; " + percent(b.changed) + " of the continuation changed";
    return s;
}

} // namespace sage
