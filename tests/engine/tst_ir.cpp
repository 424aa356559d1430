// Inverse Reasoning without a model: the relevance propagation on hand-built attention whose result is worked
// out by hand, decision-point detection on synthetic distributions, branch description, the random flips, the
// PDF writer's structure and the report reader's errors.
#include "engine/core/SageError.h"
#include "engine/ir/Branches.h"
#include "engine/ir/DecisionPoints.h"
#include "engine/ir/Faithfulness.h"
#include "engine/ir/IrSweep.h"
#include "engine/ir/PdfWriter.h"
#include "engine/ir/ReportJson.h"

#include <QtTest>

#include <cmath>

using namespace sage;

namespace {

IrToken generatedToken(int32_t id, std::vector<float> logits)
{
    const auto [h, m] = DecisionPoints::entropyAndMargin(logits);
    IrToken t;
    t.id = id;
    t.text = "t" + std::to_string(id);
    t.generated = true;
    t.probability = 0.5f;
    t.entropy = h;
    t.margin = m;
    return t;
}

int countOf(const std::string& text, const std::string& what)
{
    int n = 0;
    for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
    return n;
}

// A small valid report for the reader tests.
IrReport tinyReport()
{
    IrReport r;
    r.promptLength = 2;
    r.tokens = {{5, "a", false, 0, 0, 0}, {6, "b", false, 0, 0, 0}, {7, "c", true, 0.4f, 1.5f, 0.1f}};
    r.generatedText = "c";
    r.relevance = {0.25f, 0.75f, 0.0f};
    r.run.modelName = "m";
    r.run.date = "2026-01-01T00:00:00Z";
    r.run.sampling.seed = 42;
    return r;
}

} // namespace

class TestIr : public QObject
{
    Q_OBJECT

private slots:
    void propagationMatchesHandComputation()
    {
        // T = 3, two layers (forward order). Ahat = 0.5 * A + 0.5 * I.
        // Row 2 through layer 2: 0.5 * [0, .5, .5] + 0.5 * [0, 0, 1] = [0, .25, .75].
        // Through layer 1: Ahat1 rows: [1, 0, 0], [.25, .75, 0], [.1, .15, .75];
        // .25 * [.25, .75, 0] + .75 * [.1, .15, .75] = [.1375, .3, .5625].
        const std::vector<float> a1 = {1, 0, 0, 0.5f, 0.5f, 0, 0.2f, 0.3f, 0.5f};
        const std::vector<float> a2 = {1, 0, 0, 1, 0, 0, 0, 0.5f, 0.5f};
        const std::vector<int64_t> rows = {2, 1};
        const std::vector<float> r = IrSweep::propagate({a1, a2}, 3, rows);
        QCOMPARE(r.size(), size_t(6));
        const float want2[] = {0.1375f, 0.3f, 0.5625f};
        for (int j = 0; j < 3; ++j)
            QVERIFY2(std::fabs(r[size_t(j)] - want2[j]) < 1e-6f, qPrintable(QString::number(j)));
        // Row 1 through layer 2: 0.5 * [1, 0, 0] + 0.5 * [0, 1, 0] = [.5, .5, 0]; layer 1: .5*[1,0,0] + .5*[.25,.75,0].
        QVERIFY(std::fabs(r[3] - 0.625f) < 1e-6f);
        QVERIFY(std::fabs(r[4] - 0.375f) < 1e-6f);
        QCOMPARE(r[5], 0.0f);
    }

    void propagationOfIdentityKeepsOneHot()
    {
        // Attention of every token on itself moves no relevance, however deep.
        const int64_t T = 5;
        std::vector<float> eye(size_t(T * T), 0.0f);
        for (int64_t i = 0; i < T; ++i) eye[size_t(i * T + i)] = 1.0f;
        const std::vector<int64_t> rows = {0, 3, 4};
        const auto r = IrSweep::propagate({eye, eye, eye}, T, rows);
        for (size_t k = 0; k < rows.size(); ++k)
            for (int64_t j = 0; j < T; ++j) QCOMPARE(r[k * T + size_t(j)], j == rows[k] ? 1.0f : 0.0f);
    }

    void propagationRejectsBadArguments()
    {
        const std::vector<int64_t> rows = {3};
        try {
            IrSweep::propagate({std::vector<float>(9, 0.0f)}, 3, rows);
            QFAIL("expected an error");
        } catch (const SageError& e) {
            QVERIFY(QString(e.what()).contains("row 3 is outside [0, 3)"));
        }
        const std::vector<int64_t> ok = {0};
        try {
            IrSweep::propagate({std::vector<float>(8, 0.0f)}, 3, ok);
            QFAIL("expected an error");
        } catch (const SageError& e) {
            QVERIFY(QString(e.what()).contains("expected 9 (T x T)"));
        }
    }

    void entropyAndMarginOfKnownDistributions()
    {
        const std::vector<float> uniform(4, 0.0f);
        const auto [h, m] = DecisionPoints::entropyAndMargin(uniform);
        QVERIFY(std::fabs(h - std::log(4.0f)) < 1e-6f);
        QVERIFY(std::fabs(m) < 1e-7f);
        // p = (e^2, 1, 1) / (e^2 + 2): margin p1 - p2.
        const std::vector<float> peaked = {2.0f, 0.0f, 0.0f};
        const double z = std::exp(2.0) + 2.0;
        QVERIFY(std::fabs(DecisionPoints::entropyAndMargin(peaked).second - float((std::exp(2.0) - 1.0) / z)) < 1e-6f);
    }

    void decisionPointWhereContestedNotWhereConfident()
    {
        // Prompt of 2 tokens, then 5 generated: position 2 contested, position 3 confident; later tokens lean
        // on both equally, so only contestedness separates them.
        std::vector<float> contestedLogits(50, 0.0f), confidentLogits(50, 0.0f);
        contestedLogits[0] = 3.0f;
        contestedLogits[1] = 2.9f;
        confidentLogits[0] = 15.0f;
        IrConfig cfg;
        std::vector<IrToken> toks(2);
        toks[0].id = 1;
        toks[1].id = 2;
        toks.push_back(generatedToken(10, contestedLogits));
        toks.push_back(generatedToken(11, confidentLogits));
        for (int i = 0; i < 3; ++i) toks.push_back(generatedToken(12 + i, confidentLogits));
        QVERIFY(DecisionPoints::isContested(toks[2].entropy, toks[2].margin, cfg));
        QVERIFY(!DecisionPoints::isContested(toks[3].entropy, toks[3].margin, cfg));
        const auto cands = DecisionPoints::contested(toks, 2, cfg);
        QCOMPARE(cands, std::vector<int64_t>({2}));

        // Relevance rows [G = 5, T = 7]: row g (token 2 + g) spreads uniformly over its 2 + g positions, except
        // that tokens 5 and 6 put 0.5 on positions 2 and 3.
        const int64_t T = 7, G = 5;
        std::vector<float> rel(size_t(G * T), 0.0f);
        for (int64_t g = 0; g < G; ++g) {
            const int64_t n = 2 + g;
            for (int64_t p = 0; p < n; ++p) rel[size_t(g * T + p)] = 1.0f / float(n);
        }
        for (int64_t g : {3, 4}) {
            std::fill(rel.begin() + g * T, rel.begin() + (g + 1) * T, 0.0f);
            rel[size_t(g * T + 2)] = 0.5f;
            rel[size_t(g * T + 3)] = 0.5f;
        }
        const std::vector<int64_t> both = {2, 3};
        auto dps = DecisionPoints::select(toks, 2, cands, rel, cfg);
        QCOMPARE(dps.size(), size_t(1));
        QCOMPARE(dps[0].position, int64_t(2));
        QCOMPARE(dps[0].influencedBy, int64_t(6)); // lift 0.5 * 6 = 3 beats 0.5 * 5
        QVERIFY(std::fabs(dps[0].influence - 3.0f) < 1e-6f);
        QCOMPARE(dps[0].parent, int64_t(-1));

        // With both as candidates, the later one's parent is the earlier one when its row leans on it:
        // token 3's row (g = 1) is uniform over 3 positions: lift 1/3 * 3 = 1 >= parentMinLift.
        dps = DecisionPoints::select(toks, 2, both, rel, cfg);
        QCOMPARE(dps.size(), size_t(2));
        QCOMPARE(dps[1].parent, int64_t(0));
        QVERIFY(dps[1].parent < dps[1].id);

        // A minimum lift above every later dependency leaves no decision point.
        cfg.minInfluenceLift = 10;
        QVERIFY(DecisionPoints::select(toks, 2, cands, rel, cfg).empty());
    }

    void branchDivergenceAndRejoin()
    {
        // Original: 1 2 | 3 4 5 6 7 8; at position 2 force 9, branch continues 5 6 7 (rejoins at offset 1 with
        // the original's 5 6 7 at offset 2).
        const std::vector<int32_t> seq = {1, 2, 3, 4, 5, 6, 7, 8};
        const std::vector<int32_t> br = {9, 5, 6, 7};
        const IrBranch b = Branches::describe(nullptr, seq, 2, br, 0.25f, 3);
        QCOMPARE(b.forcedToken, 9);
        QCOMPARE(b.tokens, br);
        QCOMPARE(b.rejoinsAt, int64_t(1));
        QCOMPARE(b.rejoinsOriginalAt, int64_t(2));
        QCOMPARE(b.changed, 1.0f); // 5 6 7 vs 4 5 6: every position differs
        QCOMPARE(b.text, std::string("<id 9><id 5><id 6><id 7>"));
        QCOMPARE(b.originalText, std::string("<id 3><id 4><id 5><id 6>"));
        QCOMPARE(b.divergesAtChar, int64_t(4));
        const std::vector<int32_t> never = {9, 10, 11, 12};
        const IrBranch n = Branches::describe(nullptr, seq, 2, never, 0.25f, 2);
        QCOMPARE(n.rejoinsAt, int64_t(-1));
        // Same continuation after the forced token: nothing changed.
        const std::vector<int32_t> same = {9, 4, 5};
        QCOMPARE(Branches::describe(nullptr, seq, 2, same, 0.1f, 2).changed, 0.0f);
    }

    void utf8IsRepaired()
    {
        QCOMPARE(Branches::validUtf8("a\xE6\x97"), std::string("a\xEF\xBF\xBD\xEF\xBF\xBD"));
        QCOMPARE(Branches::validUtf8("\xE6\x97\xA5"), std::string("\xE6\x97\xA5"));
    }

    void randomFlipsAreSeededAndDistinct()
    {
        const std::vector<int64_t> eligible = {3, 4, 5, 6, 7, 8, 9};
        const auto a = Faithfulness::pickRandom(eligible, 3, 7);
        QCOMPARE(a, Faithfulness::pickRandom(eligible, 3, 7));
        QCOMPARE(a.size(), size_t(3));
        QVERIFY(std::is_sorted(a.begin(), a.end()));
        QVERIFY(std::adjacent_find(a.begin(), a.end()) == a.end());
        QCOMPARE(Faithfulness::pickRandom(eligible, 20, 1).size(), eligible.size());
        const std::vector<float> dec = {1.0f, 0.5f}, rnd = {0.25f, 0.25f};
        const IrFaithfulness f = Faithfulness::compute(dec, rnd, {4, 5});
        QCOMPARE(f.flips, int64_t(2));
        QCOMPARE(f.decisionChange, 0.75f);
        QCOMPARE(f.randomChange, 0.25f);
        QCOMPARE(f.score, 0.5f);
    }

    void pdfStructureIsValid()
    {
        PdfWriter pdf;
        pdf.text(50, 50, 12, "Hello (world) \\ caf\xC3\xA9 \xE2\x86\x92");
        pdf.rect(50, 80, 10, 10, 0.1, 0.2, 0.3);
        pdf.newPage();
        pdf.line(10, 10, 100, 100, 1, 0, 0, 0);
        const std::string bytes = pdf.finish();
        QVERIFY(bytes.rfind("%PDF-1.4", 0) == 0);
        QVERIFY(bytes.find("(Hello \\(world\\) \\\\ caf\xE9 ?)") != std::string::npos);
        // Two page objects and a page tree that counts them.
        QCOMPARE(countOf(bytes, "/Type /Page "), 2);
        QVERIFY(bytes.find("/Count 2") != std::string::npos);
        // startxref points at the xref table; every in-use entry points at "N 0 obj".
        const size_t sx = bytes.rfind("startxref\n");
        const size_t xref = std::stoul(bytes.substr(sx + 10));
        QCOMPARE(bytes.substr(xref, 5), std::string("xref\n"));
        const size_t count = std::stoul(bytes.substr(xref + 7));
        QCOMPARE(count, size_t(9)); // free entry + catalog, pages, 2 fonts, 2 x (page, content)
        for (size_t i = 1; i < count; ++i) {
            const size_t off = std::stoul(bytes.substr(xref + 5 + std::to_string(count).size() + 3 + 20 * i, 10));
            QCOMPARE(bytes.substr(off, std::to_string(i).size() + 6), std::to_string(i) + " 0 obj");
        }
        // Stream lengths are exact.
        const size_t s = bytes.find("/Length ");
        const size_t len = std::stoul(bytes.substr(s + 8));
        const size_t data = bytes.find("stream\n", s) + 7;
        QCOMPARE(bytes.substr(data + len, 9), std::string("endstream"));
    }

    void reportJsonRoundTrip()
    {
        const IrReport r = tinyReport();
        const IrReport back = ReportJson::read(ReportJson::write(r), "mem");
        QVERIFY(back == r);
    }

    void reportReaderErrors_data()
    {
        QTest::addColumn<QString>("mutation");
        QTest::addColumn<QString>("message");
        QTest::newRow("not json") << "garbage"
                                  << "x.json: not valid JSON";
        QTest::newRow("format") << "format"
                                << "x.json: $.format: expected \"sage-ir-report\", found \"other\"";
        QTest::newRow("newer") << "version"
                               << "$.schema_version: the report has schema version 99, this build reads up to 1";
        QTest::newRow("missing") << "missing"
                                 << "x.json: $.run: the field \"date\" is missing";
        QTest::newRow("type") << "type"
                              << "$.tokens[2].p: expected a number, found string";
        QTest::newRow("range") << "range"
                               << "$.tokens[2].p: expected a number in [0.000000, 1.000000], found 1.5";
        QTest::newRow("rows") << "rows"
                              << "$.relevance: expected 1 rows (one per generated token), found 0";
        QTest::newRow("row length") << "rowlen"
                                    << "$.relevance[0]: expected an array of 2 numbers";
        QTest::newRow("not object") << "array"
                                    << "$: expected the report object, found array";
    }

    void reportReaderErrors()
    {
        QFETCH(QString, mutation);
        QFETCH(QString, message);
        nlohmann::json j = ReportJson::toJson(tinyReport());
        std::string text;
        if (mutation == "garbage") text = "{not json";
        if (mutation == "format") j["format"] = "other";
        if (mutation == "version") j["schema_version"] = 99;
        if (mutation == "missing") j["run"].erase("date");
        if (mutation == "type") j["tokens"][2]["p"] = "high";
        if (mutation == "range") j["tokens"][2]["p"] = 1.5;
        if (mutation == "rows") j["relevance"] = nlohmann::json::array();
        if (mutation == "rowlen") j["relevance"][0] = nlohmann::json::array({0.5});
        if (mutation == "array") j = nlohmann::json::array();
        if (text.empty()) text = j.dump();
        try {
            ReportJson::read(text, "x.json");
            QFAIL("expected an error");
        } catch (const SageError& e) {
            QVERIFY2(QString(e.what()).contains(message), e.what());
        }
    }
};

QTEST_APPLESS_MAIN(TestIr)
#include "tst_ir.moc"
