// recomputeHeadStreams: both streams of a head equal recomputeAttention's single-stream maps exactly (same
// forward code), the gates equal the live capture's, the head selection and shapes, progress, cancellation and
// the error messages. Model: the golden loop2_moe checkpoint (3 layers, 4 heads, window 4), 11 tokens.
#include "engine/capture/AttentionRecompute.h"
#include "engine/capture/CapturePolicy.h"
#include "engine/capture/StreamRecompute.h"
#include "engine/capture/Trace.h"
#include "engine/capture/TraceRecorder.h"
#include "engine/core/SageError.h"
#include "engine/cpu/ThreadPool.h"
#include "engine/model/Model.h"
#include "engine/runtime/InferenceSession.h"

#include <QtTest>

#include <atomic>
#include <cmath>

using namespace sage;

class TestStreamRecompute : public QObject
{
    Q_OBJECT

    std::unique_ptr<Model> m_model;
    std::unique_ptr<cpu::ThreadPool> m_pool;
    const std::vector<int32_t> m_tokens{1, 5, 9, 13, 17, 21, 3, 7, 11, 2, 40};

private slots:
    void initTestCase()
    {
        m_model = Model::load(SAGE_TEST_DATA_DIR "/golden/loop2_moe");
        m_pool = std::make_unique<cpu::ThreadPool>(2);
    }

    void streamsMatchSingleMapRecompute()
    {
        const int64_t T = int64_t(m_tokens.size());
        for (int64_t loop : {1, 2})
            for (int64_t layer : {0, 2}) {
                const HeadStreams x = recomputeHeadStreams(*m_model, *m_pool, m_tokens, loop, layer, {3, 1});
                QCOMPARE(x.tokens, T);
                QCOMPARE(x.heads, (std::vector<int32_t>{1, 3})); // sorted
                QCOMPARE(x.global.size(), size_t(2 * T * T));
                QCOMPARE(x.local.size(), loop == 1 ? size_t(0) : size_t(2 * T * T));
                QCOMPARE(x.headIndex(3), int64_t(1));
                QCOMPARE(x.headIndex(0), int64_t(-1));
                for (int64_t k = 0; k < 2; ++k) {
                    const int64_t head = x.heads[size_t(k)];
                    const std::vector<float> g =
                        recomputeAttention(*m_model, *m_pool, m_tokens, loop, layer, head, AttentionStream::Global);
                    QVERIFY(std::equal(g.begin(), g.end(), x.global.begin() + k * T * T));
                    if (loop == 2) {
                        const std::vector<float> l =
                            recomputeAttention(*m_model, *m_pool, m_tokens, loop, layer, head, AttentionStream::Local);
                        QVERIFY(std::equal(l.begin(), l.end(), x.local.begin() + k * T * T));
                        // Window of 4 keys: nothing left of i - 3.
                        QCOMPARE(x.local[size_t(k * T * T + 10 * T + 6)], 0.0f);
                        QVERIFY(x.local[size_t(k * T * T + 10 * T + 7)] > 0.0f);
                    }
                    for (int64_t i = 0; i < T; ++i) {
                        double sum = 0;
                        for (int64_t j = 0; j < T; ++j) sum += x.global[size_t((k * T + i) * T + j)];
                        QVERIFY(std::fabs(sum - 1.0) < 1e-5);
                    }
                }
            }
    }

    void gatesMatchTheLiveCapture()
    {
        Trace trace;
        TraceRecorder recorder(*m_model, CapturePolicy::fromName("summary", m_model->config()), trace);
        InferenceSession session(*m_model, *m_pool);
        session.setCaptureHook(&recorder);
        std::vector<float> logits;
        session.forward(m_tokens, false, logits);
        session.setCaptureHook(nullptr);
        QCOMPARE(trace.size(), int64_t(m_tokens.size()));

        const HeadStreams x = recomputeHeadStreams(*m_model, *m_pool, m_tokens, 2, 1, {});
        QCOMPARE(x.heads.size(), size_t(4)); // empty = every head
        for (int64_t h = 0; h < 4; ++h)
            for (int64_t p = 0; p < int64_t(m_tokens.size()); ++p) {
                const LayerRecord* r = trace.step(p)->layer(2, 1);
                QVERIFY(r && r->gate.size() == 4);
                QCOMPARE(x.gate[size_t(h * x.tokens + p)], r->gate[size_t(h)]);
            }
    }

    void progressAndCancel()
    {
        std::vector<std::pair<int64_t, int64_t>> seen;
        recomputeHeadStreams(*m_model, *m_pool, m_tokens, 2, 1, {0}, nullptr, [&](int64_t done, int64_t total) {
            seen.push_back({done, total});
        });
        QVERIFY(seen.size() >= 2);
        for (size_t i = 1; i < seen.size(); ++i) QVERIFY(seen[i].first >= seen[i - 1].first);
        QCOMPARE(seen.back().first, seen.back().second);
        QCOMPARE(seen.front().second, int64_t(5)); // 3 layers of loop 1 + layers 0..1 of loop 2

        std::atomic<bool> cancel{true};
        QVERIFY_THROWS_EXCEPTION(CancelledError, recomputeHeadStreams(*m_model, *m_pool, m_tokens, 2, 1, {0}, &cancel));
        // Cancelled from the progress callback, mid-pass.
        std::atomic<bool> later{false};
        QVERIFY_THROWS_EXCEPTION(CancelledError, recomputeHeadStreams(*m_model, *m_pool, m_tokens, 2, 2, {0}, &later,
                                                                      [&](int64_t done, int64_t) {
                                                                          if (done == 2) later = true;
                                                                      }));
    }

    void errorsNameTheProblem()
    {
        auto message = [&](auto fn) {
            try {
                fn();
            } catch (const SageError& e) {
                return QString::fromStdString(e.what());
            }
            return QString();
        };
        QString m = message([&] { recomputeHeadStreams(*m_model, *m_pool, m_tokens, 3, 0, {}); });
        QVERIFY2(m.contains("loop 3") && m.contains("[1, 2]"), qPrintable(m));
        m = message([&] { recomputeHeadStreams(*m_model, *m_pool, m_tokens, 1, 0, {4}); });
        QVERIFY2(m.contains("head 4") && m.contains("[0, 3]"), qPrintable(m));
        m = message([&] { recomputeHeadStreams(*m_model, *m_pool, {}, 1, 0, {}); });
        QVERIFY2(m.contains("no tokens"), qPrintable(m));
        m = message([&] { recomputeHeadStreams(*m_model, *m_pool, m_tokens, 2, 0, {}, nullptr, {}, 1000); });
        QVERIFY2(m.contains("4 heads") && m.contains("single head"), qPrintable(m));
    }
};

QTEST_APPLESS_MAIN(TestStreamRecompute)
#include "tst_streamrecompute.moc"
