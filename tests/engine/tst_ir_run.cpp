// Inverse Reasoning on the bundled model (resources/models/sage-mini-coder): a short greedy run yields decision
// points and branches whose structure and invariants hold; the reports (JSON, session file, HTML, PDF,
// Markdown) carry them faithfully; sage-cli explain works end to end and rejects bad flags. The model may be
// retrained, so no test names a specific token.
#include "engine/capture/AttentionRecompute.h"
#include "engine/capture/CaptureHook.h"
#include "engine/capture/SessionFile.h"
#include "engine/capture/Trace.h"
#include "engine/core/SageError.h"
#include "engine/cpu/ThreadPool.h"
#include "engine/ir/Branches.h"
#include "engine/ir/InverseReasoning.h"
#include "engine/ir/IrSessionStore.h"
#include "engine/ir/IrSweep.h"
#include "engine/ir/ReportHtml.h"
#include "engine/ir/ReportJson.h"
#include "engine/ir/ReportMarkdown.h"
#include "engine/ir/ReportPdf.h"
#include "engine/model/Model.h"
#include "engine/runtime/InferenceSession.h"
#include "engine/tokenizer/Tokenizer.h"

#include <QProcess>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QXmlStreamReader>
#include <QtTest>

#include <cmath>
#include <map>
#include <memory>

using namespace sage;

namespace {

// Keeps the loop gates of every layer of loop 2: [layer][T, H].
class GateHook : public CaptureHook
{
public:
    std::map<int64_t, std::vector<float>> gates;
    int64_t n = 0, H = 0;
    uint32_t beginForward(int64_t, std::span<const int32_t> t, int64_t) override
    {
        n = int64_t(t.size());
        return 0;
    }
    void endForward(bool) override {}
    uint32_t askLayer(int64_t loop, int64_t) override { return loop == 2 ? CaptureKind::Gates : 0; }
    uint32_t askHead(int64_t, int64_t, int64_t) override { return 0; }
    void observeAttention(int64_t, int64_t, int64_t, AttentionStream, int64_t, const float*, const float*, int64_t,
                          int64_t) override
    {
    }
    void observeStreams(int64_t, int64_t, int64_t, int64_t, const float*, const float*, float) override {}
    void observeGates(int64_t, int64_t layer, const float* g) override { gates[layer].assign(g, g + n * H); }
    void observeRouter(int64_t, int64_t, const float*, const int32_t*, const float*) override {}
    void observeResidual(int64_t, int64_t, const float*) override {}
    void observeLens(int64_t, int64_t, int64_t, int64_t, const float*, const float*) override {}
    void observeLensInput(int64_t, int64_t, const float*) override {}
    void observeLogits(const float*) override {}
};

} // namespace

class TestIrRun : public QObject
{
    Q_OBJECT

    std::unique_ptr<Model> m_model;
    std::unique_ptr<cpu::ThreadPool> m_pool;
    IrReport m_report;
    IrConfig m_config;
    QTemporaryDir m_dir;

    static QString modelDir() { return QStringLiteral(SAGE_SOURCE_DIR) + "/resources/models/sage-mini-coder"; }

    struct Run {
        int code = -1;
        QByteArray out, err;
    };
    static Run cli(const QStringList& args)
    {
        QProcess p;
        p.start(QStringLiteral(SAGE_CLI_PATH), args);
        p.waitForFinished(300000);
        return {p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1, p.readAllStandardOutput(),
                p.readAllStandardError()};
    }
    static QByteArray runTool(const QString& tool, const QStringList& args)
    {
        QProcess p;
        p.start(tool, args);
        p.waitForFinished(60000);
        return p.readAllStandardOutput();
    }

private slots:
    void initTestCase()
    {
        m_model = Model::load(modelDir().toStdString());
        m_pool = std::make_unique<cpu::ThreadPool>(2);
        // Thresholds looser than the defaults so that a retrained, more confident model still has points.
        m_config.entropyThreshold = 0.5;
        m_config.marginThreshold = 0.5;
        m_config.minInfluenceLift = 0.5;
        m_config.branchesPerPoint = 2;
        m_config.branchLength = 8;
        m_config.maxDecisionPoints = 4;
        IrRequest req;
        req.promptText = "def fib(n):\n";
        req.prompt = m_model->tokenizer()->encode(req.promptText);
        req.maxNewTokens = 24;
        req.sampling.seed = 7;
        std::vector<std::string> stages;
        m_report = runInverseReasoning(*m_model, *m_pool, req, m_config, [&](const std::string& stage, double f) {
            QVERIFY(f >= 0.0 && f <= 1.0);
            if (stages.empty() || stages.back() != stage) stages.push_back(stage);
        });
        QCOMPARE(stages, std::vector<std::string>({"generate", "sweep", "branches", "report"}));
    }

    void runRecordIsComplete()
    {
        const IrRunInfo& r = m_report.run;
        QCOMPARE(QString::fromStdString(r.modelName), QString("sage-mini-coder"));
        QCOMPARE(r.configHash.size(), size_t(16));
        QCOMPARE(r.weightHash.size(), size_t(16));
        QCOMPARE(r.promptText, std::string("def fib(n):\n"));
        QCOMPARE(r.sampling.seed, uint64_t(7));
        QVERIFY(!r.engineVersion.empty());
        QVERIFY(QRegularExpression(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$)")
                    .match(QString::fromStdString(r.date))
                    .hasMatch());
        QCOMPARE(m_report.promptLength, int64_t(r.promptTokens.size()));
        QVERIFY(m_report.generatedCount() >= 2);
        QCOMPARE(m_report.loops, m_model->config().loopNum);
    }

    void relevanceRowsAreDistributions()
    {
        const int64_t G = m_report.generatedCount(), T = int64_t(m_report.tokens.size()), P = m_report.promptLength;
        QCOMPARE(m_report.relevance.size(), size_t(G * T));
        for (int64_t g = 0; g < G; ++g) {
            double sum = 0;
            for (int64_t p = 0; p < T; ++p) {
                const float v = m_report.relevanceAt(g, p);
                QVERIFY(v >= 0.0f);
                if (p >= P + g) QCOMPARE(v, 0.0f); // only earlier positions
                sum += v;
            }
            QVERIFY2(std::fabs(sum - 1.0) < 1e-5, qPrintable(QString("row %1 sums to %2").arg(g).arg(sum, 0, 'g', 9)));
        }
    }

    void effectiveAttentionMixesStreamsThroughTheGate()
    {
        // 20 tokens > the window (16), so the local stream is truncated for the last rows. Expected map of a
        // loop-2 layer: (1/H) sum_h g_h[i] A_global_h[i, :] + (1 - g_h[i]) A_local_h[i, :], from exact maps
        // recomputed one head at a time and the gates of a separate pass.
        const ModelConfig& c = m_model->config();
        std::vector<int32_t> seq;
        for (int i = 0; i < 20; ++i) seq.push_back(int32_t(100 + 37 * i % 900));
        const int64_t T = int64_t(seq.size()), H = c.numAttentionHeads;
        IrSweep sweep(*m_model, *m_pool);
        const std::vector<float> rel = sweep.run(seq, 4, 0);
        QCOMPARE(rel.size(), size_t((T - 4) * T));
        GateHook gh;
        gh.H = H;
        {
            InferenceSession s(*m_model, *m_pool);
            s.setCaptureHook(&gh);
            std::vector<float> logits;
            s.forward(seq, false, logits);
        }
        // The first and the last layer keep the test quick.
        for (int64_t layer : {int64_t(0), c.numHiddenLayers - 1})
            for (int64_t loop = 1; loop <= c.loopNum; ++loop) {
                std::vector<double> want(size_t(T * T), 0.0);
                for (int64_t h = 0; h < H; ++h) {
                    const auto glob =
                        recomputeAttention(*m_model, *m_pool, seq, loop, layer, h, AttentionStream::Global);
                    std::vector<float> loc;
                    if (loop > 1)
                        loc = recomputeAttention(*m_model, *m_pool, seq, loop, layer, h, AttentionStream::Local);
                    for (int64_t i = 0; i < T; ++i) {
                        const double g = loop > 1 ? gh.gates.at(layer)[size_t(i * H + h)] : 1.0;
                        for (int64_t j = 0; j < T; ++j)
                            want[size_t(i * T + j)] +=
                                (g * glob[size_t(i * T + j)] + (loop > 1 ? (1 - g) * loc[size_t(i * T + j)] : 0.0)) /
                                double(H);
                    }
                }
                const std::vector<float>& got = sweep.map(loop, layer);
                for (int64_t i = 0; i < T; ++i)
                    for (int64_t j = 0; j < T; ++j)
                        QVERIFY2(std::fabs(got[size_t(i * T + j)] - want[size_t(i * T + j)]) < 1e-5,
                                 qPrintable(QString("loop %1 layer %2 [%3, %4]: %5 vs %6")
                                                .arg(loop)
                                                .arg(layer)
                                                .arg(i)
                                                .arg(j)
                                                .arg(got[size_t(i * T + j)])
                                                .arg(want[size_t(i * T + j)])));
            }
        // The relevance is the propagation of exactly these maps.
        std::vector<std::vector<float>> maps;
        for (int64_t loop = 1; loop <= c.loopNum; ++loop)
            for (int64_t layer = 0; layer < c.numHiddenLayers; ++layer) maps.push_back(sweep.map(loop, layer));
        std::vector<int64_t> rows;
        for (int64_t q = 3; q < T - 1; ++q) rows.push_back(q);
        const std::vector<float> ref = IrSweep::propagate(maps, T, rows);
        for (size_t k = 0; k < rel.size(); ++k) QVERIFY(std::fabs(rel[k] - ref[k]) < 1e-6f);
    }

    void decisionPointsHaveStructure()
    {
        const auto& dps = m_report.decisionPoints;
        QVERIFY2(!dps.empty(), "a 24-token run of the bundled model yields decision points");
        QVERIFY(int64_t(dps.size()) <= m_config.maxDecisionPoints);
        const Tokenizer* tok = m_model->tokenizer();
        for (size_t i = 0; i < dps.size(); ++i) {
            const IrDecisionPoint& p = dps[i];
            QCOMPARE(p.id, int64_t(i));
            QVERIFY(p.position >= m_report.promptLength);
            QCOMPARE(p.token, m_report.tokens[size_t(p.position)].id);
            if (i > 0) QVERIFY(p.position > dps[i - 1].position);
            QVERIFY(p.entropy >= m_config.entropyThreshold || p.margin <= m_config.marginThreshold);
            QVERIFY(p.influence >= m_config.minInfluenceLift);
            QVERIFY(p.influencedBy >= p.position + 2);
            QVERIFY2(p.parent < p.id, "parents precede children");
            // Alternatives: runner-ups only, most probable first, none above the chosen token's probability
            // unless sampling chose a less probable token (greedy here, so never).
            QVERIFY(!p.alternatives.empty());
            for (size_t a = 0; a < p.alternatives.size(); ++a) {
                QVERIFY(p.alternatives[a].token != p.token);
                QVERIFY(p.alternatives[a].probability <= p.probability + 1e-6f);
                if (a > 0) QVERIFY(p.alternatives[a].probability <= p.alternatives[a - 1].probability);
            }
            // Evidence.
            const IrEvidence& e = p.evidence;
            QVERIFY(!e.sources.empty());
            for (size_t s = 0; s < e.sources.size(); ++s) {
                QVERIFY(e.sources[s].position < p.position);
                QCOMPARE(e.sources[s].relevance, m_report.relevanceAt(p.step, e.sources[s].position));
                if (s > 0) QVERIFY(e.sources[s].relevance <= e.sources[s - 1].relevance);
            }
            QCOMPARE(int64_t(e.loopShares.size()), m_report.loops);
            double loopSum = 0;
            for (float x : e.loopShares) loopSum += x;
            QVERIFY(std::fabs(loopSum - 1.0) < 1e-4);
            QVERIFY(std::fabs(e.globalShare + e.localShare - 1.0f) < 1e-4f);
            QVERIFY(!e.layers.empty() && !e.heads.empty());
            for (const IrCarrier& h : e.heads) QVERIFY(h.loop > 1 || h.stream == "global");
            QVERIFY(!e.experts.empty()); // the bundled model is MoE
            QCOMPARE(int64_t(e.loopPredictions.size()), m_report.loops);
            // The last loop's prediction is the model's own distribution for the step.
            QCOMPARE(e.loopPredictions.back().top.at(0).token, p.token);
            // Branches start with the forced runner-up and reuse the prefix.
            QCOMPARE(p.branches.size(), std::min<size_t>(2, p.alternatives.size()));
            for (size_t b = 0; b < p.branches.size(); ++b) {
                const IrBranch& br = p.branches[b];
                QCOMPARE(br.forcedToken, p.alternatives[b].token);
                QCOMPARE(br.tokens.at(0), br.forcedToken);
                QVERIFY(br.tokens.size() <= size_t(1 + m_config.branchLength));
                const std::string forcedText = Branches::text(tok, std::span<const int32_t>(&br.forcedToken, 1));
                QVERIFY2(br.text.rfind(forcedText, 0) == 0, br.text.c_str());
                QVERIFY(br.changed >= 0.0f && br.changed <= 1.0f);
                QVERIFY(br.rejoinsAt == -1 || br.rejoinsAt >= 1);
            }
            QVERIFY(p.explanation.rfind("chose `", 0) == 0);
            QVERIFY(p.explanation.find("rests mostly on") != std::string::npos);
        }
        const IrFaithfulness& f = m_report.faithfulness;
        QCOMPARE(f.flips, int64_t(dps.size()) - (dps.back().position + 1 < int64_t(m_report.tokens.size()) ? 0 : 1));
        QVERIFY(std::fabs(f.score - (f.decisionChange - f.randomChange)) < 1e-6f);
        for (int64_t rp : f.randomPositions)
            for (const IrDecisionPoint& p : dps) QVERIFY(rp != p.position);
    }

    void branchMatchesFreshGreedyRun()
    {
        // A branch from the copied prefix state equals a fresh greedy run from the same forced prefix.
        const IrDecisionPoint& p = m_report.decisionPoints.at(0);
        const IrBranch& br = p.branches.at(0);
        std::vector<int32_t> seq;
        for (int64_t i = 0; i < p.position; ++i) seq.push_back(m_report.tokens[size_t(i)].id);
        seq.push_back(br.forcedToken);
        InferenceSession s(*m_model, *m_pool);
        std::vector<float> logits;
        s.forward(seq, false, logits);
        std::vector<int32_t> got{br.forcedToken};
        while (got.size() < br.tokens.size()) {
            const int32_t next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
            got.push_back(next);
            s.forward(std::span<const int32_t>(&next, 1), false, logits);
        }
        QCOMPARE(got, br.tokens);
    }

    void jsonAndSessionRoundTrip()
    {
        const std::string text = ReportJson::write(m_report);
        QVERIFY(text.find("\"decision_points\"") != std::string::npos);
        QVERIFY(ReportJson::read(text, "mem") == m_report);
        const std::string path = m_dir.filePath("report.json").toStdString();
        ReportJson::save(m_report, path);
        QVERIFY(ReportJson::load(path) == m_report);

        SessionMeta meta;
        meta.prompt = m_report.run.promptTokens;
        meta.sampling = m_report.run.sampling;
        meta.extensionsJson = R"({"other":{"kept":true}})";
        IrSessionStore::store(meta, m_report);
        Trace trace;
        const std::string file = m_dir.filePath("run.sagetrace").toStdString();
        SessionFile::save(file, meta, trace);
        Trace back;
        const SessionMeta opened = SessionFile::open(file, back);
        const auto loaded = IrSessionStore::load(opened, file);
        QVERIFY(loaded.has_value());
        QVERIFY(*loaded == m_report);
        QVERIFY(opened.extensionsJson.find("\"kept\":true") != std::string::npos);
        SessionMeta empty;
        QVERIFY(!IrSessionStore::load(empty, "x").has_value());
    }

    void htmlIsSelfContained()
    {
        const std::string html = ReportHtml::write(m_report);
        QXmlStreamReader xml(QByteArray::fromStdString(html));
        int svgs = 0, rects = 0;
        while (!xml.atEnd()) {
            xml.readNext();
            if (!xml.isStartElement()) continue;
            const QString name = xml.name().toString();
            if (name == "svg") ++svgs;
            if (name == "rect") ++rects;
            QVERIFY2(name != "script" && name != "link" && name != "img" && name != "iframe",
                     qPrintable("external-capable element " + name));
            for (const QXmlStreamAttribute& a : xml.attributes()) {
                QVERIFY2(a.name() != QLatin1String("src"), "no src attributes");
                if (a.name() == QLatin1String("href")) QVERIFY(a.value().startsWith('#'));
            }
        }
        QVERIFY2(!xml.hasError(), qPrintable(xml.errorString()));
        QCOMPARE(svgs, 2); // heatmap and tree
        QVERIFY(rects > 0);
        QVERIFY(html.find("http") == std::string::npos);
        QVERIFY(html.find("url(") == std::string::npos);
        QVERIFY(html.find("Decision point #0") != std::string::npos);
        QVERIFY(html.find(m_report.run.configHash) != std::string::npos);
    }

    void pdfHasPages()
    {
        const std::string pdf = ReportPdf::write(m_report);
        long pages = 0;
        for (size_t p = pdf.find("/Type /Page "); p != std::string::npos; p = pdf.find("/Type /Page ", p + 1)) ++pages;
        QVERIFY(pdf.find("/Count " + std::to_string(pages)) != std::string::npos);
        QVERIFY(pdf.find(" re f\n") != std::string::npos); // heatmap cells
        const QString path = m_dir.filePath("report.pdf");
        QFile f(path);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write(pdf.data(), qint64(pdf.size()));
        f.close();
        const QString pdfinfo = QStandardPaths::findExecutable("pdfinfo");
        if (!pdfinfo.isEmpty()) {
            const QString info = QString::fromUtf8(runTool(pdfinfo, {path}));
            QVERIFY2(info.contains(QRegularExpression("Pages:\\s+" + QString::number(pages))), qPrintable(info));
        } else {
            qInfo("pdfinfo not installed: checked the structure only");
        }
        const QString pdftotext = QStandardPaths::findExecutable("pdftotext");
        if (!pdftotext.isEmpty()) {
            const QString text = QString::fromUtf8(runTool(pdftotext, {path, "-"}));
            QVERIFY(text.contains("Inverse Reasoning report"));
            QVERIFY(text.contains("Decision point #0"));
        }
    }

    void markdownHasSections()
    {
        const std::string md = ReportMarkdown::write(m_report);
        QVERIFY(md.rfind("# Inverse Reasoning report", 0) == 0);
        QVERIFY(md.find("## Decision point #0") != std::string::npos);
        QVERIFY(md.find("Seed**: 7") != std::string::npos);
        QVERIFY(md.find(m_report.decisionPoints[0].explanation.substr(0, 12)) != std::string::npos);
    }

    void cancelStopsTheRun()
    {
        std::atomic<bool> cancel{true};
        IrRequest req;
        req.prompt = {1, 2, 3};
        req.maxNewTokens = 4;
        QVERIFY_THROWS_EXCEPTION(CancelledError, runInverseReasoning(*m_model, *m_pool, req, m_config, {}, &cancel));
    }

    void badSettingsAreRejected()
    {
        IrRequest req;
        req.prompt = {1, 2, 3};
        req.maxNewTokens = 2;
        IrConfig bad;
        bad.marginThreshold = 2;
        try {
            runInverseReasoning(*m_model, *m_pool, req, bad);
            QFAIL("expected an error");
        } catch (const SageError& e) {
            QVERIFY2(QString(e.what()).contains("margin threshold is 2.000000, expected a probability in [0, 1]"),
                     e.what());
        }
        IrConfig small;
        small.memoryBudget = 100; // 8 maps of 5 x 5 floats need 800 bytes
        try {
            runInverseReasoning(*m_model, *m_pool, req, small);
            QFAIL("expected an error");
        } catch (const SageError& e) {
            QVERIFY2(QString(e.what()).contains("over the budget"), e.what());
        }
    }

    void cliExplainWritesEveryFormat()
    {
        // Markdown and PDF are written by the same code path (tested above through the API).
        for (const QString fmt : {"json", "html"}) {
            const QString out = m_dir.filePath("cli." + fmt);
            const Run r =
                cli({"explain", "--model", modelDir(), "--prompt", "def add(a, b):", "--max-tokens", "12", "--branches",
                     "1", "--branch-length", "4", "--entropy-threshold", "0.5", "--format", fmt, "--out", out});
            QVERIFY2(r.code == 0, r.err.constData());
            QVERIFY(r.err.contains("[sweep"));
            QVERIFY(QFileInfo(out).size() > 0);
            if (fmt == "json") {
                QFile f(out);
                QVERIFY(f.open(QIODevice::ReadOnly));
                const IrReport rep = ReportJson::read(f.readAll().toStdString(), out.toStdString());
                QCOMPARE(rep.generatedCount(), int64_t(12));
                QCOMPARE(rep.run.promptText, std::string("def add(a, b):"));
            }
        }
    }

    void cliExplainRejectsBadFlags_data()
    {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<QString>("message");
        QTest::newRow("format") << QStringList{"--prompt", "x", "--format", "xml", "--out", "a"}
                                << "--format must be json, md, html or pdf, got 'xml'";
        QTest::newRow("no format") << QStringList{"--prompt", "x", "--out", "a"}
                                   << "explain needs --format json, md, html or pdf";
        QTest::newRow("no out") << QStringList{"--prompt", "x", "--format", "json"} << "explain needs --out FILE";
        QTest::newRow("margin") << QStringList{"--prompt", "x", "--format",           "json",
                                               "--out",    "a", "--margin-threshold", "3"}
                                << "option --margin-threshold must be between";
        QTest::newRow("unknown") << QStringList{"--prompt", "x", "--frmat", "json"} << "unknown option --frmat";
        QTest::newRow("both inputs") << QStringList{"--prompt", "x", "--tokens", "1", "--format", "json", "--out", "a"}
                                     << "explain needs exactly one of --prompt or --tokens";
    }

    void cliExplainRejectsBadFlags()
    {
        QFETCH(QStringList, args);
        QFETCH(QString, message);
        const Run r = cli(QStringList{"explain", "--model", modelDir()} + args);
        QCOMPARE(r.code, 2);
        QVERIFY2(r.err.contains(message.toUtf8()), r.err.constData());
    }
};

QTEST_APPLESS_MAIN(TestIrRun)
#include "tst_ir_run.moc"
