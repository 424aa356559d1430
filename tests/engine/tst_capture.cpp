// Live capture against the PyTorch reference (tests/data/capture, written by
// tools/reference/make_capture_golden.py): attention of both streams, gates, stream norms and divergence,
// router softmax, residual norms, logit lens and logits, for prefill and for token-by-token decode; policy
// selection and top-k summaries; the trace's consistent prefix under concurrent reads; exact recompute; and
// that capture never changes the logits.
//
// Tolerances (|engine - reference| <= abs + rel * |reference|, reference evaluated in float64):
//   probabilities (attention, gates, router): abs 1e-5;  norms, divergence, lens KL: abs 1e-4 + rel 1e-4;
//   logits: abs 2e-4 + rel 1e-4 (as the golden logits tests).
#include "GoldenCase.h"

#include "engine/capture/AttentionRecompute.h"
#include "engine/capture/CaptureGeneration.h"
#include "engine/capture/CapturePolicy.h"
#include "engine/capture/NpyFile.h"
#include "engine/capture/SessionFile.h"
#include "engine/capture/Trace.h"
#include "engine/capture/TraceExport.h"
#include "engine/capture/TraceRecorder.h"
#include "engine/core/SageError.h"
#include "engine/cpu/Kernels.h"
#include "engine/cpu/ThreadPool.h"
#include "engine/model/Model.h"
#include "engine/runtime/InferenceSession.h"

#include <QElapsedTimer>
#include <QProcess>
#include <QTemporaryDir>
#include <QThread>
#include <QtTest>

#include <atomic>
#include <cmath>
#include <thread>

using namespace sage;

namespace {

QString captureRoot()
{
    return QStringLiteral(SAGE_TEST_DATA_DIR) + "/capture";
}

QJsonObject readJson(const QString& path)
{
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly)) return {};
    return QJsonDocument::fromJson(f.readAll()).object();
}

struct Tol {
    double abs, rel;
};

Tol toleranceFor(const QString& file)
{
    if (file.startsWith("attn.") || file.startsWith("gate.") || file.startsWith("router.")) return {1e-5, 0};
    if (file == "logits.npy") return {2e-4, 1e-4};
    return {1e-4, 1e-4};
}

// Runs `tokens` through a fresh session with `recorder`: prefill of the first `prefill` tokens, then one
// token per forward call.
void runCaptured(const Model& m, cpu::ThreadPool& pool, TraceRecorder& rec, const std::vector<int32_t>& tokens,
                 size_t prefill)
{
    InferenceSession s(m, pool);
    s.setCaptureHook(&rec);
    std::vector<float> logits;
    if (prefill > 0) s.forward(std::span<const int32_t>(tokens.data(), prefill), false, logits);
    for (size_t i = prefill; i < tokens.size(); ++i) s.forward(std::span<const int32_t>(&tokens[i], 1), false, logits);
    rec.flush();
}

// Runs sage-cli with `args` and checks that it fails (exit 1) with `message` on stderr.
void cliFails(const QStringList& args, const QString& message)
{
    QProcess p;
    p.start(QStringLiteral(SAGE_CLI_PATH), args);
    QVERIFY(p.waitForFinished(120000));
    QCOMPARE(p.exitCode(), 1);
    const QByteArray err = p.readAllStandardError();
    QVERIFY2(err.contains(message.toUtf8()), err.constData());
}

void compareExport(const QString& caseName, const QString& exportDir, const QString& label)
{
    const QString gdir = captureRoot() + "/" + caseName;
    const QJsonObject manifest = readJson(gdir + "/manifest.json");
    const QJsonArray files = manifest.value("files").toArray();
    QVERIFY(files.size() > 10);
    for (const auto& v : files) {
        const QString f = v.toString();
        std::vector<int64_t> ws, gs;
        const std::vector<float> want = NpyFile::read((gdir + "/" + f).toStdString(), &ws);
        QVERIFY2(QFile::exists(exportDir + "/" + f), qPrintable(label + ": export lacks " + f));
        const std::vector<float> got = NpyFile::read((exportDir + "/" + f).toStdString(), &gs);
        QVERIFY2(gs == ws, qPrintable(label + ": " + f + " has another shape"));
        const Tol t = toleranceFor(f);
        size_t worst = 0;
        const double ratio = toleranceRatio(got, want, t.abs, t.rel, &worst);
        QVERIFY2(ratio <= 1.0,
                 qPrintable(QString("%1 %2 %3: |engine - reference| exceeds abs %4 rel %5 at %6: %7 vs %8")
                                .arg(caseName, label, f)
                                .arg(t.abs)
                                .arg(t.rel)
                                .arg(worst)
                                .arg(double(got[worst]), 0, 'g', 9)
                                .arg(double(want[worst]), 0, 'g', 9)));
    }
}

} // namespace

class TestCapture : public QObject
{
    Q_OBJECT

private slots:
    void matchesReference_data()
    {
        QTest::addColumn<QString>("name");
        const QStringList names = QDir(captureRoot()).entryList(QDir::Dirs | QDir::NoDotAndDotDot, QDir::Name);
        QVERIFY(names.size() >= 3);
        for (const QString& n : names) QTest::newRow(qPrintable(n)) << n;
    }

    // Full policy, exported as .npy, equals the reference; prefill, decode and a mix of both.
    void matchesReference()
    {
        QFETCH(QString, name);
        const GoldenCase g = loadGoldenCase(name);
        auto model = Model::load(g.dir.toStdString());
        cpu::ThreadPool pool(2);
        const size_t T = g.tokens.size();
        using Mode = TraceRecorder::LensBatching::Mode;
        for (Mode mode : {Mode::Batched, Mode::WithHead})
            for (size_t prefill : {T, size_t(0), T / 2 + 1}) {
                Trace trace;
                TraceRecorder rec(*model, CapturePolicy::preset(CapturePreset::Full, model->config()), trace, &pool);
                rec.setLensBatching({.mode = mode});
                QCOMPARE(rec.batchesLens(), mode == Mode::Batched);
                runCaptured(*model, pool, rec, g.tokens, prefill);
                QCOMPARE(trace.size(), int64_t(T));
                QCOMPARE(trace.tokens(), g.tokens);
                QTemporaryDir dir;
                TraceExport::writeNpy(trace, dir.path().toStdString());
                compareExport(name, dir.path(),
                              QString("prefill %1 %2")
                                  .arg(prefill)
                                  .arg(mode == Mode::Batched ? "batched lens" : "lens with the head"));
                const QJsonObject m = readJson(dir.path() + "/manifest.json");
                QCOMPARE(m.value("tokens").toArray().size(), qsizetype(T));
                QVERIFY(m.value("files").toArray().size() >=
                        readJson(captureRoot() + "/" + name + "/manifest.json").value("files").toArray().size());
            }
    }

    // Capture never changes the numbers forward() returns.
    void captureLeavesLogitsUnchanged()
    {
        const GoldenCase g = loadGoldenCase("loop2_moe");
        auto model = Model::load(g.dir.toStdString());
        cpu::ThreadPool pool(2);
        for (bool all : {true, false}) {
            std::vector<float> plain, captured;
            InferenceSession a(*model, pool), b(*model, pool);
            a.forward(g.tokens, all, plain);
            Trace trace;
            TraceRecorder rec(*model, CapturePolicy::preset(CapturePreset::Full, model->config()), trace);
            b.setCaptureHook(&rec);
            b.forward(g.tokens, all, captured);
            QVERIFY(plain == captured);
        }
        // Decoding token by token, with the lens rows in the output head's pass or batched apart.
        using Mode = TraceRecorder::LensBatching::Mode;
        for (Mode mode : {Mode::WithHead, Mode::Batched}) {
            InferenceSession a(*model, pool), b(*model, pool);
            Trace trace;
            TraceRecorder rec(*model, CapturePolicy::preset(CapturePreset::Standard, model->config()), trace, &pool);
            rec.setLensBatching({.mode = mode});
            b.setCaptureHook(&rec);
            std::vector<float> plain, captured;
            for (size_t i = 0; i < g.tokens.size(); ++i) {
                a.forward(std::span<const int32_t>(&g.tokens[i], 1), false, plain);
                b.forward(std::span<const int32_t>(&g.tokens[i], 1), false, captured);
                QVERIFY(plain == captured);
            }
        }
    }

    // Model::headOutputGram: G_h = Wo_h^T Wo_h of every head, against a direct double-precision sum over the
    // weights (relative 1e-5 of the entry's scale); one shared instance per layer, also when asked from
    // several threads at once.
    void headOutputGramMatchesTheWeights()
    {
        const GoldenCase g = loadGoldenCase("loop2_moe");
        auto model = Model::load(g.dir.toStdString());
        const ModelConfig& c = model->config();
        const int64_t D = c.hiddenSize, H = c.numAttentionHeads, hd = c.headDim;
        cpu::ThreadPool pool(2);
        for (int64_t layer = 0; layer < c.numHiddenLayers; ++layer) {
            std::vector<const std::vector<float>*> seen(4, nullptr);
            {
                std::vector<std::jthread> threads;
                for (size_t t = 0; t < seen.size(); ++t)
                    threads.emplace_back([&, t] {
                        cpu::ThreadPool own(1);
                        seen[t] = &model->headOutputGram(layer, own);
                    });
            }
            const std::vector<float>& gram = model->headOutputGram(layer, pool);
            for (const std::vector<float>* p : seen) QCOMPARE(p, &gram);
            QCOMPARE(gram.size(), size_t(H * hd * hd));
            const WeightView& o = model->layer(layer).o;
            for (int64_t h = 0; h < H; ++h)
                for (int64_t x = 0; x < hd; ++x)
                    for (int64_t y = 0; y < hd; ++y) {
                        double want = 0, scale = 0;
                        for (int64_t d = 0; d < D; ++d) {
                            const double a = o.at(d, h * hd + x), b = o.at(d, h * hd + y);
                            want += a * b;
                            scale += std::abs(a * b);
                        }
                        const double got = gram[size_t((h * hd + x) * hd + y)];
                        if (std::abs(got - want) > 1e-5 * scale + 1e-12)
                            QFAIL(qPrintable(QString("layer %1 head %2 (%3, %4): %5 vs %6")
                                                 .arg(layer)
                                                 .arg(h)
                                                 .arg(x)
                                                 .arg(y)
                                                 .arg(got)
                                                 .arg(want)));
                    }
        }
    }

    // The logit lens of decode steps is computed in batches (TraceRecorder holds the steps back): the returned
    // logits stay bit-identical to a run without capture; the trace is bit-identical whether the lens rows were
    // computed one by one (a flush after every call) or all at once; and it equals the lens of a prefill of the
    // same tokens within 1e-4 (the residual streams of a prefill round differently from those of decode).
    void decodeLensBatchesAreExact()
    {
        const GoldenCase g = loadGoldenCase("loop2_moe");
        auto model = Model::load(g.dir.toStdString());
        cpu::ThreadPool pool(2);
        // Standard plus the lens after every layer: several lens rows per step, more than one product takes.
        CapturePolicy policy = CapturePolicy::preset(CapturePreset::Standard, model->config());
        policy.setKinds(policy.kinds() | CaptureKind::LensLayer);
        const ModelConfig& cfg = model->config();
        const size_t lensPerStep = size_t(cfg.loopNum * cfg.numHiddenLayers + cfg.loopNum);
        QVERIFY(g.tokens.size() * (lensPerStep - 1) > 32);
        InferenceSession plain(*model, pool), batched(*model, pool), single(*model, pool);
        Trace batchedTrace, singleTrace;
        TraceRecorder recBatched(*model, policy, batchedTrace, &pool), recSingle(*model, policy, singleTrace, &pool);
        recBatched.setLensBatching({.mode = TraceRecorder::LensBatching::Mode::Batched,
                                    .maxSteps = 1000,
                                    .maxHold = std::chrono::hours(1),
                                    .slowCall = std::chrono::hours(1)}); // hold every step
        batched.setCaptureHook(&recBatched);
        single.setCaptureHook(&recSingle);
        std::vector<float> a, b, c;
        for (size_t i = 0; i < g.tokens.size(); ++i) {
            plain.forward(std::span<const int32_t>(&g.tokens[i], 1), false, a);
            batched.forward(std::span<const int32_t>(&g.tokens[i], 1), false, b);
            single.forward(std::span<const int32_t>(&g.tokens[i], 1), false, c);
            recSingle.flush();
            QVERIFY(a == b);
            QVERIFY(a == c);
            QCOMPARE(recBatched.heldSteps(), int64_t(i + 1));
            QCOMPARE(batchedTrace.size(), int64_t(0));
            QCOMPARE(singleTrace.size(), int64_t(i + 1));
        }
        recBatched.flush();
        QCOMPARE(recBatched.heldSteps(), int64_t(0));
        Trace prefillTrace;
        TraceRecorder rec2(*model, policy, prefillTrace);
        runCaptured(*model, pool, rec2, g.tokens, g.tokens.size());
        QCOMPARE(batchedTrace.size(), prefillTrace.size());
        QCOMPARE(singleTrace.size(), prefillTrace.size());
        for (int64_t t = 0; t < batchedTrace.size(); ++t) {
            const auto& ld = batchedTrace.step(t)->lens;
            const auto& ls = singleTrace.step(t)->lens;
            const auto& lp = prefillTrace.step(t)->lens;
            QCOMPARE(ld.size(), lensPerStep);
            QCOMPARE(ls.size(), ld.size());
            QCOMPARE(lp.size(), ld.size());
            // Order: per loop its layers, then the loop's end (not after the last loop), then the output.
            size_t r = 0;
            for (int64_t loop = 1; loop <= cfg.loopNum; ++loop)
                for (int64_t L = 0; L <= cfg.numHiddenLayers; ++L) {
                    if (L == cfg.numHiddenLayers && loop == cfg.loopNum) continue;
                    QCOMPARE(ld[r].loop, int16_t(loop));
                    QCOMPARE(ld[r].layer, int16_t(L == cfg.numHiddenLayers ? -1 : L));
                    ++r;
                }
            QCOMPARE(ld.back().loop, int16_t(cfg.loopNum));
            QCOMPARE(ld.back().layer, int16_t(-1));
            QCOMPARE(ld.back().kl, 0.0f);
            for (size_t r = 0; r < ld.size(); ++r) {
                QCOMPARE(ls[r].loop, ld[r].loop);
                QCOMPARE(ls[r].layer, ld[r].layer);
                QCOMPARE(lp[r].loop, ld[r].loop);
                QCOMPARE(lp[r].layer, ld[r].layer);
                QVERIFY(ld[r].kl == ls[r].kl);
                QVERIFY(ld[r].tokens == ls[r].tokens);
                QVERIFY(ld[r].probs == ls[r].probs);
                QVERIFY(std::fabs(ld[r].kl - lp[r].kl) <= 1e-4);
                QCOMPARE(ld[r].tokens.size(), lp[r].tokens.size());
                for (size_t k = 0; k < ld[r].probs.size(); ++k)
                    QVERIFY(std::fabs(ld[r].probs[k] - lp[r].probs[k]) <= 1e-4);
                QCOMPARE(ld[r].tokens[0], lp[r].tokens[0]);
            }
        }
    }

    // A recorder whose lens rows the session computes with the head never holds steps, and its lens equals
    // the batched one within the rounding of the two kernels.
    void lensWithTheHeadHoldsNothing()
    {
        const GoldenCase g = loadGoldenCase("loop2_moe");
        auto model = Model::load(g.dir.toStdString());
        cpu::ThreadPool pool(2);
        const CapturePolicy policy = CapturePolicy::preset(CapturePreset::Summary, model->config());
        QVERIFY(model->weightBytes() <= TraceRecorder::kBatchedLensMaxWeightBytes);
        InferenceSession a(*model, pool), b(*model, pool);
        Trace ta, tb;
        TraceRecorder batched(*model, policy, ta, &pool), withHead(*model, policy, tb, &pool);
        // Auto: one lens row per step fits beside the output row in the head's pass, on any model.
        QCOMPARE(withHead.lensRowsPerStep(), model->config().loopNum - 1);
        QVERIFY(!withHead.batchesLens());
        batched.setLensBatching({.mode = TraceRecorder::LensBatching::Mode::Batched});
        QVERIFY(batched.batchesLens());
        withHead.setLensBatching({.mode = TraceRecorder::LensBatching::Mode::WithHead});
        QVERIFY(!withHead.batchesLens());
        {
            // Auto with a lens after every layer: more rows than the head's pass holds, on a small model.
            CapturePolicy perLayer = policy;
            perLayer.setKinds(policy.kinds() | CaptureKind::LensLayer);
            Trace tc;
            TraceRecorder many(*model, perLayer, tc, &pool);
            const ModelConfig& c = model->config();
            QCOMPARE(many.lensRowsPerStep(), c.loopNum - 1 + c.loopNum * c.numHiddenLayers);
            QVERIFY(many.lensRowsPerStep() + 1 > cpu::kMatvecMaxTokens);
            QVERIFY(many.batchesLens());
        }
        a.setCaptureHook(&batched);
        b.setCaptureHook(&withHead);
        std::vector<float> la, lb;
        for (size_t i = 0; i < g.tokens.size(); ++i) {
            a.forward(std::span<const int32_t>(&g.tokens[i], 1), false, la);
            b.forward(std::span<const int32_t>(&g.tokens[i], 1), false, lb);
            QVERIFY(la == lb);
            QCOMPARE(withHead.heldSteps(), int64_t(0));
            QCOMPARE(tb.size(), int64_t(i + 1));
        }
        batched.flush();
        QCOMPARE(ta.size(), tb.size());
        for (int64_t t = 0; t < ta.size(); ++t) {
            const auto& x = ta.step(t)->lens;
            const auto& y = tb.step(t)->lens;
            QCOMPARE(x.size(), y.size());
            for (size_t r = 0; r < x.size(); ++r) {
                QCOMPARE(x[r].loop, y[r].loop);
                QVERIFY(std::fabs(x[r].kl - y[r].kl) <= 1e-5);
                QCOMPARE(x[r].tokens[0], y[r].tokens[0]);
                for (size_t k = 0; k < x[r].probs.size(); ++k)
                    QVERIFY(std::fabs(x[r].probs[k] - y[r].probs[k]) <= 1e-5);
            }
        }
    }

    // A failed call forgets its own lens rows but keeps the held steps of earlier calls; a prompt call after
    // held steps publishes both in order.
    void failedCallKeepsHeldSteps()
    {
        const GoldenCase g = loadGoldenCase("loop2_moe");
        auto model = Model::load(g.dir.toStdString());
        cpu::ThreadPool pool(2);
        const CapturePolicy policy = CapturePolicy::preset(CapturePreset::Summary, model->config());
        InferenceSession s(*model, pool), ref(*model, pool);
        Trace trace, refTrace;
        TraceRecorder rec(*model, policy, trace, &pool), refRec(*model, policy, refTrace, &pool);
        rec.setLensBatching({.mode = TraceRecorder::LensBatching::Mode::Batched,
                             .maxSteps = 1000,
                             .maxHold = std::chrono::hours(1),
                             .slowCall = std::chrono::hours(1)});
        refRec.setLensBatching({.mode = TraceRecorder::LensBatching::Mode::Batched});
        s.setCaptureHook(&rec);
        ref.setCaptureHook(&refRec);
        std::vector<float> logits;
        for (size_t i = 0; i < 4; ++i) {
            s.forward(std::span<const int32_t>(&g.tokens[i], 1), false, logits);
            ref.forward(std::span<const int32_t>(&g.tokens[i], 1), false, logits);
        }
        QCOMPARE(rec.heldSteps(), int64_t(4));
        std::atomic<bool> cancel{true};
        QVERIFY_THROWS_EXCEPTION(CancelledError,
                                 s.forward(std::span<const int32_t>(&g.tokens[4], 1), false, logits, &cancel));
        QCOMPARE(rec.heldSteps(), int64_t(4));
        s.forward(std::span<const int32_t>(&g.tokens[4], 1), false, logits);
        ref.forward(std::span<const int32_t>(&g.tokens[4], 1), false, logits);
        QCOMPARE(rec.heldSteps(), int64_t(5));
        // A multi-token call publishes the held steps and its own, in order (its lens comes from the session).
        s.forward(std::span<const int32_t>(&g.tokens[5], 3), false, logits);
        QCOMPARE(rec.heldSteps(), int64_t(0));
        QCOMPARE(trace.size(), int64_t(8));
        ref.forward(std::span<const int32_t>(&g.tokens[5], 3), false, logits);
        refRec.flush();
        QCOMPARE(refTrace.size(), int64_t(8));
        for (int64_t t = 0; t < 8; ++t) {
            QCOMPARE(trace.step(t)->position, t);
            const auto& a = trace.step(t)->lens;
            const auto& b = refTrace.step(t)->lens;
            QCOMPARE(a.size(), size_t(model->config().loopNum));
            QCOMPARE(a.size(), b.size());
            for (size_t r = 0; r < a.size(); ++r) {
                QVERIFY(a[r].kl == b[r].kl);
                QVERIFY(a[r].tokens == b[r].tokens);
                QVERIFY(a[r].probs == b[r].probs);
            }
        }
    }

    // Standard preset: full rows only for the config's mch_heads; the other heads keep top-k entries, the
    // remaining mass and the entropy of the exact row.
    void standardPresetSummaries()
    {
        const GoldenCase g = loadGoldenCase("loop2_dense_w4"); // mch_heads [[0,1],[1,0]], 4 heads
        auto model = Model::load(g.dir.toStdString());
        cpu::ThreadPool pool(2);
        Trace trace;
        const CapturePolicy policy = CapturePolicy::preset(CapturePreset::Standard, model->config());
        QCOMPARE(policy.attentionTopK(), 4);
        TraceRecorder rec(*model, policy, trace);
        runCaptured(*model, pool, rec, g.tokens, g.tokens.size());
        const int64_t T = int64_t(g.tokens.size()), H = 4;
        const QString gdir = captureRoot() + "/loop2_dense_w4/";
        for (int loop = 1; loop <= 2; ++loop)
            for (int L = 0; L < 2; ++L)
                for (int s = 0; s < (loop == 1 ? 1 : 2); ++s) {
                    const std::vector<float> ref = NpyFile::read(
                        (gdir + QString("attn.%1.loop%2.layer%3.npy").arg(s ? "local" : "global").arg(loop).arg(L))
                            .toStdString()); // [H, T, T]
                    for (int64_t t = 0; t < T; ++t) {
                        const StepRecord& step = *trace.step(t);
                        const LayerRecord* r = step.layer(loop, L);
                        QVERIFY(r);
                        for (int64_t h = 0; h < H; ++h) {
                            const float* row = ref.data() + (h * T + t) * T;
                            const bool mch = (L == 0 && h == 1) || (L == 1 && h == 0);
                            const FullAttentionRow* f = step.fullRow(loop, L, h, uint8_t(s));
                            QCOMPARE(f != nullptr, mch);
                            // Entropy and top-k of the exact row.
                            double ent = 0;
                            std::vector<std::pair<float, int>> sorted;
                            for (int64_t j = 0; j < T; ++j) {
                                if (row[j] > 0) ent -= double(row[j]) * std::log(double(row[j]));
                                sorted.push_back({row[j], int(j)});
                            }
                            std::stable_sort(sorted.begin(), sorted.end(),
                                             [](auto a, auto b) { return a.first > b.first; });
                            const int64_t slot = h * r->streams + s;
                            QVERIFY(std::fabs(r->entropy[size_t(slot)] - ent) <= 1e-4);
                            double kept = 0;
                            for (int e = 0; e < 4; ++e) {
                                const int32_t key = r->topKeys[size_t(slot * 4 + e)];
                                const float p = r->topProbs[size_t(slot * 4 + e)];
                                if (sorted[size_t(e)].first <= 0) {
                                    QCOMPARE(key, -1); // fewer keys than k (early positions, local window)
                                    continue;
                                }
                                QVERIFY(std::fabs(p - sorted[size_t(e)].first) <= 1e-5);
                                QVERIFY(std::fabs(row[key] - p) <= 1e-5); // a key holding that probability
                                kept += p;
                            }
                            QVERIFY(std::fabs(r->restMass[size_t(slot)] - (1.0 - kept)) <= 1e-5);
                            if (f) {
                                for (size_t j = 0; j < f->probs.size(); ++j)
                                    QVERIFY(std::fabs(f->probs[j] - row[f->firstKey + int64_t(j)]) <= 1e-5);
                            }
                        }
                    }
                }
        // Standard keeps no logits; the trace is much smaller than the full one.
        QVERIFY(trace.step(0)->logits.empty());
        QVERIFY(!trace.step(0)->lens.empty());
    }

    // Full rows over the policy's key limit fall back to the top-k summary; the kept rows stay exact.
    void fullRowKeyLimit()
    {
        const GoldenCase g = loadGoldenCase("loop2_dense_w4"); // mch_heads [[0,1],[1,0]], window 4
        auto model = Model::load(g.dir.toStdString());
        cpu::ThreadPool pool(1);
        CapturePolicy policy = CapturePolicy::preset(CapturePreset::Standard, model->config());
        QCOMPARE(policy.fullRowMaxKeys(), int64_t(256));
        policy.setFullRowMaxKeys(5);
        Trace trace;
        TraceRecorder rec(*model, policy, trace);
        runCaptured(*model, pool, rec, g.tokens, g.tokens.size());
        const int64_t T = int64_t(g.tokens.size());
        QVERIFY(T > 6);
        const QString gdir = captureRoot() + "/loop2_dense_w4/";
        int kept = 0, dropped = 0;
        for (int loop = 1; loop <= 2; ++loop)
            for (int s = 0; s < (loop == 1 ? 1 : 2); ++s) {
                const std::vector<float> ref = NpyFile::read(
                    (gdir + QString("attn.%1.loop%2.layer0.npy").arg(s ? "local" : "global").arg(loop)).toStdString());
                for (int64_t t = 0; t < T; ++t) {
                    const StepRecord& step = *trace.step(t);
                    const int64_t keys = s ? std::min<int64_t>(t + 1, 4) : t + 1;
                    const FullAttentionRow* f = step.fullRow(loop, 0, 1, uint8_t(s));
                    QCOMPARE(f != nullptr, keys <= 5);
                    const LayerRecord* r = step.layer(loop, 0);
                    QVERIFY(!std::isnan(r->entropy[size_t(1 * r->streams + s)])); // summary always kept
                    if (!f) {
                        ++dropped;
                        continue;
                    }
                    ++kept;
                    QCOMPARE(int64_t(f->probs.size()), keys);
                    for (size_t j = 0; j < f->probs.size(); ++j)
                        QVERIFY(std::fabs(f->probs[j] - ref[size_t((1 * T + t) * T + f->firstKey) + j]) <= 1e-5);
                }
            }
        QVERIFY(kept > 0 && dropped > 0);
        // The estimate follows the limit: fewer bytes than without it.
        CapturePolicy unlimited = policy;
        unlimited.setFullRowMaxKeys(0);
        QVERIFY(policy.estimate(model->config(), 100).bytesPerToken <
                unlimited.estimate(model->config(), 100).bytesPerToken);
    }

    // The standard preset stays within 2x the KV cache at 4k context for the bundled model's shape.
    void standardPresetWithinTwiceKvCache()
    {
        const ModelConfig c = ModelConfig::load(std::string(SAGE_SOURCE_DIR) + "/resources/models/sage-mini-coder");
        QVERIFY(!c.mchHeads.empty());
        const CaptureEstimate e = CapturePolicy::preset(CapturePreset::Standard, c).estimate(c, 4096);
        QVERIFY2(e.totalBytes <= 2 * e.kvCacheBytes,
                 qPrintable(QString("standard %1 bytes, KV cache %2 bytes").arg(e.totalBytes).arg(e.kvCacheBytes)));
    }

    // Explicit selection: only loop 2, layer 1, head 2, local stream, with full rows; nothing else.
    void explicitSelection()
    {
        const GoldenCase g = loadGoldenCase("loop2_moe");
        auto model = Model::load(g.dir.toStdString());
        cpu::ThreadPool pool(2);
        CapturePolicy p;
        p.setKinds(CaptureKind::Attention | CaptureKind::Gates | CaptureKind::RouterChoice);
        p.selectLoops({2});
        p.selectLayers({1, 2});
        p.selectHeads({2});
        p.selectStreams(StreamBits::Local);
        p.setFullHeads({{1, 2}});
        p.setAttentionTopK(2);
        QCOMPARE(p.layerKinds(model->config(), 1, 1), 0u);
        QCOMPARE(p.layerKinds(model->config(), 2, 0), 0u);
        QCOMPARE(p.layerKinds(model->config(), 2, 1), uint32_t(CaptureKind::Attention | CaptureKind::Gates));
        QCOMPARE(p.layerKinds(model->config(), 2, 2),
                 uint32_t(CaptureKind::Attention | CaptureKind::Gates | CaptureKind::RouterChoice));
        Trace trace;
        TraceRecorder rec(*model, p, trace);
        runCaptured(*model, pool, rec, g.tokens, 7);
        const QString gdir = captureRoot() + "/loop2_moe/";
        const std::vector<float> ref = NpyFile::read((gdir + "attn.local.loop2.layer1.npy").toStdString());
        const int64_t T = int64_t(g.tokens.size());
        for (int64_t t = 0; t < T; ++t) {
            const StepRecord& s = *trace.step(t);
            QCOMPARE(s.layers.size(), size_t(2));
            QVERIFY(s.lens.empty() && s.logits.empty());
            const LayerRecord& r = s.layers[0];
            QCOMPARE(int(r.layer), 1);
            QVERIFY(r.experts.empty() && r.routerProbs.empty() && r.normGlobal.empty());
            QCOMPARE(s.layers[1].experts.size(), size_t(2));
            QCOMPARE(r.fullRows.size(), size_t(1));
            QCOMPARE(int(r.fullRows[0].head), 2);
            QCOMPARE(int(r.fullRows[0].stream), 1);
            for (size_t j = 0; j < r.fullRows[0].probs.size(); ++j)
                QVERIFY(std::fabs(r.fullRows[0].probs[j] - ref[size_t((2 * T + t) * T + r.fullRows[0].firstKey) + j]) <=
                        1e-5);
            for (int64_t h = 0; h < 4; ++h)
                for (int s2 = 0; s2 < 2; ++s2)
                    QCOMPARE(std::isnan(r.entropy[size_t(h * 2 + s2)]), !(h == 2 && s2 == 1));
            // Layer 2 has no selected full heads: summaries only.
            QVERIFY(s.layers[1].fullRows.empty());
        }
    }

    void budgetIsCheckedUpFront()
    {
        const GoldenCase g = loadGoldenCase("loop2_moe");
        auto model = Model::load(g.dir.toStdString());
        CapturePolicy full = CapturePolicy::preset(CapturePreset::Full, model->config());
        CapturePolicy summary = CapturePolicy::preset(CapturePreset::Summary, model->config());
        const CaptureEstimate ef = full.estimate(model->config(), 200), es = summary.estimate(model->config(), 200);
        QVERIFY(ef.bytesPerToken > es.bytesPerToken);
        full.setMemoryBudget(ef.totalBytes / 2);
        QVERIFY_THROWS_EXCEPTION(SageError, full.checkBudget(model->config(), 200));
        try {
            full.checkBudget(model->config(), 200);
        } catch (const SageError& e) {
            QVERIFY(QString(e.what()).contains("over the memory budget of " + QString::number(ef.totalBytes / 2)));
        }
        full.checkBudget(model->config(), 50); // fits
        // The estimate is close to what a real capture holds.
        Trace trace;
        TraceRecorder rec(*model, CapturePolicy::preset(CapturePreset::Full, model->config()), trace);
        cpu::ThreadPool pool(1);
        runCaptured(*model, pool, rec, g.tokens, g.tokens.size());
        const double est = double(full.estimate(model->config(), int64_t(g.tokens.size())).totalBytes);
        QVERIFY2(double(trace.bytes()) > 0.5 * est && double(trace.bytes()) < 2.0 * est,
                 qPrintable(QString("trace %1 bytes, estimate %2").arg(trace.bytes()).arg(est)));
    }

    // A reader thread polling while generation appends sees only whole steps, contiguous from 0; the
    // listener's ranges tile [0, T).
    void consistentPrefixWhileGenerating()
    {
        const GoldenCase g = loadGoldenCase("loop3_dense");
        auto model = Model::load(g.dir.toStdString());
        cpu::ThreadPool pool(2);
        Trace trace;
        const CapturePolicy policy = CapturePolicy::preset(CapturePreset::Standard, model->config());
        TraceRecorder rec(*model, policy, trace);
        std::vector<std::pair<int64_t, int64_t>> ranges;
        trace.addListener([&](int64_t a, int64_t b) { ranges.push_back({a, b}); });
        const size_t layersPerStep = size_t(model->config().loopNum * model->config().numHiddenLayers);
        std::atomic<bool> done{false};
        std::atomic<int> bad{0}, reads{0};
        std::thread reader([&] {
            while (!done.load()) {
                const auto snap = trace.snapshot();
                for (size_t i = 0; i < snap.size(); ++i) {
                    if (snap[i]->position != int64_t(i) || snap[i]->layers.size() != layersPerStep ||
                        snap[i]->lens.size() != size_t(model->config().loopNum))
                        ++bad;
                    for (const LayerRecord& r : snap[i]->layers)
                        for (float e : r.entropy)
                            if (std::isnan(e)) ++bad;
                }
                ++reads;
            }
        });
        // Generation starts only once the reader runs: a short generation could otherwise end before the reader
        // thread is first scheduled.
        while (reads.load() == 0) std::this_thread::yield();
        InferenceSession session(*model, pool);
        GenerationRequest req;
        req.prompt.assign(g.tokens.begin(), g.tokens.begin() + 6);
        req.maxNewTokens = 20;
        req.sampling.temperature = 0.8;
        req.sampling.seed = 7;
        const GenerationResult r = captureGenerate(session, nullptr, req, rec);
        done = true;
        reader.join();
        QCOMPARE(bad.load(), 0);
        QVERIFY(reads.load() > 0);
        const int64_t T = 6 + int64_t(r.steps.size());
        QCOMPARE(trace.size(), T);
        QCOMPARE(ranges.front(), (std::pair<int64_t, int64_t>{0, 6}));
        for (size_t k = 1; k < ranges.size(); ++k) QCOMPARE(ranges[k].first, ranges[k - 1].second);
        QCOMPARE(ranges.back().second, T);
        // Generated steps carry their choice; prompt steps do not.
        for (int64_t t = 0; t < T; ++t) {
            const auto s = trace.step(t);
            QCOMPARE(s->generated, t >= 6);
            if (t >= 6) {
                QCOMPARE(s->choice.token, r.steps[size_t(t - 6)].token);
                QCOMPARE(s->choice.entropy, r.steps[size_t(t - 6)].entropy);
                QVERIFY(!s->choice.alternatives.empty());
            }
        }
    }

    // The exact map recomputed on demand equals the full capture of the same tokens.
    void recomputeEqualsFullCapture()
    {
        const GoldenCase g = loadGoldenCase("loop3_dense");
        auto model = Model::load(g.dir.toStdString());
        cpu::ThreadPool pool(2);
        Trace trace;
        TraceRecorder rec(*model, CapturePolicy::preset(CapturePreset::Full, model->config()), trace);
        runCaptured(*model, pool, rec, g.tokens, 5);
        const int64_t T = int64_t(g.tokens.size());
        struct Req {
            int loop, layer, head;
            AttentionStream s;
        };
        for (Req q : {Req{1, 0, 3, AttentionStream::Global}, Req{2, 1, 0, AttentionStream::Local},
                      Req{3, 0, 2, AttentionStream::Global}, Req{3, 1, 1, AttentionStream::Local}}) {
            const std::vector<float> map = recomputeAttention(*model, pool, g.tokens, q.loop, q.layer, q.head, q.s);
            QCOMPARE(int64_t(map.size()), T * T);
            for (int64_t t = 0; t < T; ++t) {
                const FullAttentionRow* f = trace.step(t)->fullRow(q.loop, q.layer, q.head, uint8_t(q.s));
                QVERIFY(f);
                for (int64_t j = 0; j < T; ++j) {
                    const int64_t k = j - f->firstKey;
                    const float want = k >= 0 && k < int64_t(f->probs.size()) ? f->probs[size_t(k)] : 0.0f;
                    QVERIFY(std::fabs(map[size_t(t * T + j)] - want) <= 1e-6);
                }
            }
        }
        QVERIFY_THROWS_EXCEPTION(SageError,
                                 recomputeAttention(*model, pool, g.tokens, 1, 0, 0, AttentionStream::Local));
        QVERIFY_THROWS_EXCEPTION(SageError,
                                 recomputeAttention(*model, pool, g.tokens, 4, 0, 0, AttentionStream::Global));
    }

    void npyRoundTrip()
    {
        QTemporaryDir dir;
        const std::vector<float> a = {1.5f, -2.0f, 3.25f, 0.0f, 1e-30f, 7.0f};
        const std::string path = (dir.path() + "/a.npy").toStdString();
        NpyFile::write(path, a.data(), {2, 3});
        std::vector<int64_t> shape;
        QCOMPARE(NpyFile::read(path, &shape), a);
        QCOMPARE(shape, (std::vector<int64_t>{2, 3}));
        QFile f(QString::fromStdString(path));
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QByteArray bytes = f.readAll();
        QCOMPARE(bytes.size() % 64, qsizetype(24 % 64)); // header padded to 64 bytes, then 6 floats
        QVERIFY(bytes.contains("'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"));
    }

    // sage-cli capture --policy full --format npy writes the reference's arrays.
    void cliWritesNpy()
    {
        const GoldenCase g = loadGoldenCase("loop2_moe");
        QStringList ids;
        for (int32_t t : g.tokens) ids << QString::number(t);
        QTemporaryDir dir;
        QProcess p;
        p.start(QStringLiteral(SAGE_CLI_PATH), {"capture", "--model", g.dir, "--tokens", ids.join(','), "--policy",
                                                "full", "--format", "npy", "--out", dir.path() + "/npy"});
        QVERIFY(p.waitForFinished(120000));
        QVERIFY2(p.exitCode() == 0, p.readAllStandardError().constData());
        compareExport("loop2_moe", dir.path() + "/npy", "cli");
        const QJsonObject m = readJson(dir.path() + "/npy/manifest.json");
        QCOMPARE(m.value("tokens").toArray().size(), qsizetype(g.tokens.size()));
        bool hasLogits = false;
        for (const auto& f : m.value("files").toArray()) hasLogits |= f.toObject().value("file") == "logits.npy";
        QVERIFY(hasLogits);

        // JSON and CSV of a short generation.
        for (const char* fmt : {"json", "csv"}) {
            QProcess q;
            q.start(QStringLiteral(SAGE_CLI_PATH), {"capture", "--model", g.dir, "--tokens", "1,5,9", "--max-tokens",
                                                    "4", "--format", fmt, "--out", dir.path() + "/" + fmt});
            QVERIFY(q.waitForFinished(120000));
            QVERIFY2(q.exitCode() == 0, q.readAllStandardError().constData());
        }
        const QJsonObject j = readJson(dir.path() + "/json/trace.json");
        QCOMPARE(j.value("steps").toArray().size(), qsizetype(7));
        QVERIFY(j.value("steps").toArray()[3].toObject().value("generated").toBool());
        QVERIFY(!j.value("steps").toArray()[0].toObject().value("routing").toArray().isEmpty());
        QFile csv(dir.path() + "/csv/routing.csv");
        QVERIFY(csv.open(QIODevice::ReadOnly));
        QCOMPARE(csv.readAll().count('\n'),
                 qsizetype(1 + 7 * 2 * 2 * 2)); // 7 positions x 2 loops x 2 MoE layers x top-2

        cliFails({"capture", "--model", g.dir, "--tokens", "1,2", "--policy", "huge", "--out", dir.path() + "/x"},
                 "use summary, standard or full");
    }

    // Selections given as text (sage-cli's options, the workbench's preferences): index lists, stream and
    // full-head choices, and an error naming the field and the valid range for every malformed one.
    void selectionFromText()
    {
        QCOMPARE(parseIndexList(" 0, 2-4 ,7", 0, 9, "layers", "layer"), (std::set<int64_t>{0, 2, 3, 4, 7}));
        QVERIFY(parseIndexList("", 0, 9, "layers", "layer").empty());
        QVERIFY(parseIndexList("all", 0, 9, "layers", "layer").empty());
        QCOMPARE(parseIndexList("3-3", 0, 9, "layers", "layer"), (std::set<int64_t>{3}));
        QCOMPARE(formatIndexList({0, 2, 3, 4, 7}), std::string("0,2-4,7"));
        QCOMPARE(formatIndexList({}), std::string());
        const auto error = [](auto&& f) -> std::string {
            try {
                f();
            } catch (const SageError& e) {
                return e.what();
            }
            return "no error";
        };
        struct Bad {
            const char* text;
            int64_t lo, hi;
            const char* field;
            const char* what;
            const char* message;
        };
        for (const Bad& b : std::initializer_list<Bad>{
                 {"4", 0, 3, "layers", "layer", "layers: 4 is not a layer (this model has layers 0-3)"},
                 {"3-1", 0, 3, "layers", "layer", "layers: the range 3-1 runs backwards; write 1-3"},
                 {"1,,2", 1, 2, "loops", "loop",
                  "loops: an empty entry in '1,,2'; separate numbers and ranges by single commas"},
                 {"x", 0, 7, "heads", "head", "heads: 'x' is not a head number or a range such as 0-1"},
                 {"-1", 0, 7, "heads", "head", "heads: -1 is not a head (this model has heads 0-7)"},
                 {"99999999999999999999", 0, 7, "heads", "head",
                  "heads: '99999999999999999999' is not a head number or a range such as 0-1"}})
            QCOMPARE(error([&] { parseIndexList(b.text, b.lo, b.hi, b.field, b.what); }), std::string(b.message));

        const GoldenCase g = loadGoldenCase("loop2_moe"); // 3 layers, 4 heads, 2 loops
        auto model = Model::load(g.dir.toStdString());
        const ModelConfig& c = model->config();
        CapturePolicy p = CapturePolicy::preset(CapturePreset::Standard, c);
        CaptureSelection none;
        QVERIFY(none.empty());
        applySelection(p, none, c);
        QCOMPARE(p.name(), std::string("standard"));
        CaptureSelection s;
        s.loops = "2";
        s.layers = "0,2";
        s.heads = "1-3";
        s.streams = "local";
        s.fullHeads = "2:3, 0:1";
        s.attentionTopK = 2;
        s.fullRowMaxKeys = 0;
        applySelection(p, s, c);
        QCOMPARE(p.loops(), (std::set<int64_t>{2}));
        QCOMPARE(p.layers(), (std::set<int64_t>{0, 2}));
        QCOMPARE(p.heads(), (std::set<int64_t>{1, 2, 3}));
        QCOMPARE(p.streams(), StreamBits::Local);
        QVERIFY(!p.fullRowsForAllHeads());
        QCOMPARE(p.fullHeads(), (std::set<std::pair<int64_t, int64_t>>{{0, 1}, {2, 3}}));
        QCOMPARE(p.attentionTopK(), 2);
        QCOMPARE(p.fullRowMaxKeys(), int64_t(0));
        QCOMPARE(p.name(), std::string("standard (loops 2; layers 0,2; heads 1-3; streams local; full rows 0:1,2:3; "
                                       "top-2; full rows of any length)"));
        QCOMPARE(p.layerKinds(c, 1, 0), 0u);
        QCOMPARE(p.layerKinds(c, 2, 1), 0u);
        QVERIFY(p.layerKinds(c, 2, 2) & CaptureKind::Attention);
        QCOMPARE(p.headStreams(2, 0, 0), 0u);
        QCOMPARE(p.headStreams(2, 0, 1), StreamBits::Local);

        // Full rows on the summary preset switch the attention kind on; "none" and "all".
        CapturePolicy q = CapturePolicy::preset(CapturePreset::Summary, c);
        QVERIFY(!(q.kinds() & CaptureKind::Attention));
        CaptureSelection full;
        full.fullHeads = "all";
        applySelection(q, full, c);
        QVERIFY(q.kinds() & CaptureKind::Attention);
        QVERIFY(q.fullRowsForAllHeads());
        QCOMPARE(q.name(), std::string("summary (full rows of every head)"));
        CapturePolicy r = CapturePolicy::preset(CapturePreset::Full, c);
        full.fullHeads = "none";
        applySelection(r, full, c);
        QVERIFY(!r.fullRowsForAllHeads());
        QVERIFY(r.fullHeads().empty());

        const auto applyError = [&](CaptureSelection sel) {
            CapturePolicy x = CapturePolicy::preset(CapturePreset::Standard, c);
            std::string e = "no error";
            try {
                applySelection(x, sel, c);
            } catch (const SageError& err) {
                e = err.what();
            }
            return e;
        };
        CaptureSelection bad;
        bad.loops = "3";
        QCOMPARE(applyError(bad), std::string("loops: 3 is not a loop (this model has loops 1-2)"));
        bad = {};
        bad.streams = "middle";
        QCOMPARE(applyError(bad), std::string("streams: 'middle' is not a stream; use global, local or both"));
        bad = {};
        bad.loops = "1";
        bad.streams = "local";
        QVERIFY(applyError(bad).starts_with("streams: loop 1 has only the global stream"));
        bad = {};
        bad.fullHeads = "0-1";
        QVERIFY(applyError(bad).starts_with("full heads: '0-1' is not a layer:head pair such as 0:3"));
        bad.fullHeads = "3:0";
        QCOMPARE(applyError(bad), std::string("full heads: layer 3 of 3:0 is not a layer of this model (0-2)"));
        bad.fullHeads = "0:4";
        QCOMPARE(applyError(bad), std::string("full heads: head 4 of 0:4 is not a head of this model (0-3)"));
        bad.heads = "1";
        bad.fullHeads = "0:2";
        QCOMPARE(applyError(bad), std::string("full heads: head 2 of 0:2 is not among the selected heads (1)"));
        bad = {};
        bad.layers = "1";
        bad.fullHeads = "0:2";
        QCOMPARE(applyError(bad), std::string("full heads: layer 0 of 0:2 is not among the selected layers (1)"));
        bad = {};
        bad.attentionTopK = kMaxAttentionTopK + 1;
        QVERIFY(applyError(bad).starts_with("attention top-k: 65 is more than 64 entries per row"));
    }

    // sage-cli capture with a selection: only the selected loops, layers, heads and streams are exported, and
    // what is there equals the reference; a bad selection is refused before the run, naming the option's field.
    void cliSelection()
    {
        const GoldenCase g = loadGoldenCase("loop2_moe"); // 3 layers, 4 heads, 2 loops, layer 1 dense
        QStringList ids;
        for (int32_t t : g.tokens) ids << QString::number(t);
        QTemporaryDir dir;
        QProcess p;
        p.start(QStringLiteral(SAGE_CLI_PATH),
                {"capture", "--model", g.dir, "--tokens", ids.join(','), "--policy", "full", "--loops", "2", "--layers",
                 "0,2", "--heads", "1,3", "--streams", "local", "--format", "npy", "--out", dir.path() + "/npy"});
        QVERIFY(p.waitForFinished(120000));
        QVERIFY2(p.exitCode() == 0, p.readAllStandardError().constData());
        const QJsonObject m = readJson(dir.path() + "/npy/manifest.json");
        QCOMPARE(m.value("model").toObject().value("policy").toString(),
                 QString("full (loops 2; layers 0,2; heads 1,3; streams local)"));
        QStringList attn, perLayer;
        for (const auto& v : m.value("files").toArray()) {
            const QJsonObject f = v.toObject();
            const QString name = f.value("file").toString();
            if (name.startsWith("attn.")) {
                attn << name;
                QCOMPARE(f.value("heads").toArray(), (QJsonArray{1, 3}));
            } else if (f.contains("layer")) {
                perLayer << name;
            }
        }
        attn.sort();
        QCOMPARE(attn, (QStringList{"attn.local.loop2.layer0.npy", "attn.local.loop2.layer2.npy"}));
        for (const QString& f : perLayer)
            QVERIFY2(f.contains(".loop2.layer0.") || f.contains(".loop2.layer2."), qPrintable(f));
        QVERIFY(perLayer.contains("router.loop2.layer2.npy"));
        QVERIFY(!QFile::exists(dir.path() + "/npy/attn.global.loop2.layer0.npy"));
        // The selected heads' maps equal the reference's; the others are zero.
        for (const QString& f : attn) {
            std::vector<int64_t> gs, ws;
            const std::vector<float> got = NpyFile::read((dir.path() + "/npy/" + f).toStdString(), &gs);
            const std::vector<float> want = NpyFile::read((captureRoot() + "/loop2_moe/" + f).toStdString(), &ws);
            QCOMPARE(gs, ws);
            const size_t plane = size_t(gs[1] * gs[2]);
            for (int64_t h = 0; h < gs[0]; ++h)
                for (size_t e = 0; e < plane; ++e) {
                    const float a = got[size_t(h) * plane + e], b = want[size_t(h) * plane + e];
                    if (h == 1 || h == 3)
                        QVERIFY2(std::fabs(a - b) <= 1e-5,
                                 qPrintable(QString("%1 head %2: %3 vs %4").arg(f).arg(h).arg(a).arg(b)));
                    else
                        QCOMPARE(a, 0.0f);
                }
        }

        cliFails({"capture", "--model", g.dir, "--tokens", "1,2", "--layers", "3", "--out", dir.path() + "/bad"},
                 "layers: 3 is not a layer (this model has layers 0-2)");
        QVERIFY(!QFile::exists(dir.path() + "/bad"));
    }

    // sage-cli capture --out FILE.sagetrace saves the session while the run goes on: killed (SIGKILL) after the
    // first autosave, the file opens and holds at least the 256 steps that triggered it.
    void cliAutosavesSessions()
    {
        QTemporaryDir dir;
        const QString file = dir.path() + "/run.sagetrace";
        QProcess p;
        p.start(QStringLiteral(SAGE_CLI_PATH),
                {"capture", "--model", QStringLiteral(SAGE_SOURCE_DIR) + "/resources/models/sage-mini-coder",
                 "--tokens", "1,5,9", "--max-tokens", "2000", "--policy", "summary", "--threads", "1", "--out", file});
        QVERIFY(p.waitForStarted());
        QElapsedTimer t;
        t.start();
        while (!QFile::exists(file) && p.state() == QProcess::Running && t.elapsed() < 120000) QThread::msleep(2);
        p.kill();
        p.waitForFinished(30000);
        QVERIFY2(QFile::exists(file), qPrintable(p.readAllStandardError()));
        Trace trace;
        const SessionMeta meta = SessionFile::open(file.toStdString(), trace);
        QVERIFY2(trace.size() >= 256, qPrintable(QString::number(trace.size())));
        QCOMPARE(meta.maxNewTokens, int64_t(2000));
        QCOMPARE(meta.policy, std::string("summary"));
        QCOMPARE(trace.tokens()[0], 1);
    }
};

QTEST_APPLESS_MAIN(TestCapture)
#include "tst_capture.moc"
