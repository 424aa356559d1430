// The attention heatmap: matrices built from a hand-made trace (full, top-k, missing, mixed, mean, exact),
// the colour maps, and the view drawn offscreen (known cells have known colours, hover, click, keys,
// partial labelling, exact maps from a source, the trace watcher's batching across threads).
#include "SyntheticTrace.h"

#include "engine/capture/StreamRecompute.h"
#include "viz/AttentionHeatmapView.h"
#include "viz/AttentionMatrix.h"
#include "viz/ExactAttentionSource.h"
#include "viz/HeatmapCanvas.h"
#include "viz/HeatmapColors.h"
#include "viz/RunDocument.h"
#include "viz/StepSelection.h"
#include "viz/TraceWatcher.h"

#include <QSignalSpy>
#include <QtTest>

#include <cmath>
#include <thread>

using namespace sage;

namespace {

constexpr float kTol = 1e-6f;

// Answers requests when told to, with a diagonal of 0.5 in the global stream (0.5 elsewhere on the row's
// first key), local = global, gate 1.
class FakeExactSource : public ExactAttentionSource
{
public:
    using ExactAttentionSource::ExactAttentionSource;
    struct Request {
        std::vector<int32_t> tokens;
        int loop, layer;
        std::vector<int32_t> heads;
    };
    std::vector<Request> requests;
    std::vector<quint64> cancelled;
    quint64 next = 0;

    quint64 request(const std::vector<int32_t>& tokens, int loop, int layer, const std::vector<int32_t>& heads) override
    {
        requests.push_back({tokens, loop, layer, heads});
        return ++next;
    }
    void cancel(quint64 ticket) override { cancelled.push_back(ticket); }

    void answer()
    {
        const Request& r = requests.back();
        auto x = std::make_shared<HeadStreams>();
        x->tokens = int64_t(r.tokens.size());
        x->loop = r.loop;
        x->layer = r.layer;
        x->heads = r.heads;
        const int64_t T = x->tokens;
        x->global.assign(r.heads.size() * size_t(T * T), 0.0f);
        for (size_t h = 0; h < r.heads.size(); ++h)
            for (int64_t i = 0; i < T; ++i) {
                x->global[(h * size_t(T) + size_t(i)) * size_t(T) + size_t(i)] += 0.5f;
                x->global[(h * size_t(T) + size_t(i)) * size_t(T)] += 0.5f;
            }
        if (r.loop > 1) {
            x->local = x->global;
            x->gate.assign(r.heads.size() * size_t(T), 1.0f);
        }
        emit progress(next, 50);
        emit finished(next, x);
    }
};

bool near(QRgb a, QRgb b, int tol = 2)
{
    return std::abs(qRed(a) - qRed(b)) <= tol && std::abs(qGreen(a) - qGreen(b)) <= tol &&
           std::abs(qBlue(a) - qBlue(b)) <= tol;
}

QList<PromptToken> prompt()
{
    return {{10, "<s>"}, {11, "def"}};
}

QList<GeneratedStep> generated(int n)
{
    QList<GeneratedStep> out;
    for (int i = 0; i < n; ++i) {
        GeneratedStep s;
        s.token = 12 + i;
        s.text = QStringLiteral("g%1").arg(i);
        s.probability = 0.5f;
        out.append(s);
    }
    return out;
}

} // namespace

class TestHeatmapView : public QObject
{
    Q_OBJECT

private slots:
    void matrixFromFullAndTopKRows()
    {
        const auto t = synthetic::trace(5);
        const auto steps = t->snapshot();
        AttentionSelection sel; // loop 1, layer 0, head 0, global
        AttentionMatrix m = buildAttentionMatrix(steps, synthetic::kHeads, sel);
        QCOMPARE(m.rows, 5);
        QCOMPARE(m.cols, 5);
        QCOMPARE(m.fullRows, 5);
        QVERIFY(!m.isPartial());
        for (int r = 0; r < 5; ++r)
            for (int c = 0; c < 5; ++c) QCOMPARE(m.at(r, c), c == 0 ? 1.0f : 0.0f);

        sel.head = 1; // only the top-1 entry was kept
        m = buildAttentionMatrix(steps, synthetic::kHeads, sel);
        QCOMPARE(m.partialRows, 5);
        QVERIFY(m.isPartial());
        for (int r = 0; r < 5; ++r)
            for (int c = 0; c < 5; ++c) QCOMPARE(m.at(r, c), c == r ? 0.6f : 0.0f);

        sel.head = -1; // mean of head 0 (full) and head 1 (top-1): partial
        m = buildAttentionMatrix(steps, synthetic::kHeads, sel);
        QCOMPARE(m.partialRows, 5);
        QVERIFY(std::fabs(m.at(3, 0) - 0.5f) < kTol);
        QVERIFY(std::fabs(m.at(3, 3) - 0.3f) < kTol);
        QVERIFY(std::fabs(m.at(0, 0) - 0.8f) < kTol);
    }

    void mixedStreamIsGateWeighted()
    {
        const auto steps = synthetic::trace(5)->snapshot();
        AttentionSelection sel;
        sel.loop = 2;
        sel.stream = AttentionSelection::Stream::Mixed;
        const AttentionMatrix m = buildAttentionMatrix(steps, synthetic::kHeads, sel);
        QCOMPARE(m.fullRows, 5);
        // g = 0.25: 0.25 * one-hot(p) + 0.75 * uniform over keys p-1, p.
        for (int p = 1; p < 5; ++p) {
            QVERIFY(std::fabs(m.at(p, p) - (0.25f + 0.375f)) < kTol);
            QVERIFY(std::fabs(m.at(p, p - 1) - 0.375f) < kTol);
            if (p >= 2) QCOMPARE(m.at(p, p - 2), 0.0f);
        }
        QVERIFY(std::fabs(m.at(0, 0) - 1.0f) < kTol);
        // Each mixed row still sums to 1.
        for (int p = 0; p < 5; ++p) {
            float sum = 0;
            for (int c = 0; c < 5; ++c) sum += m.at(p, c);
            QVERIFY(std::fabs(sum - 1.0f) < 1e-5f);
        }
        // Loop 1 has no local stream: Local falls back to the global one.
        sel.loop = 1;
        sel.stream = AttentionSelection::Stream::Local;
        QCOMPARE(buildAttentionMatrix(steps, synthetic::kHeads, sel).at(4, 0), 1.0f);
    }

    void missingRowsAreNaNAndExactRowsReplaceThem()
    {
        const auto steps = synthetic::trace(4, false)->snapshot(); // a summary capture: no attention
        AttentionSelection sel;
        sel.loop = 2;
        sel.layer = 1;
        sel.head = 1;
        AttentionMatrix m = buildAttentionMatrix(steps, synthetic::kHeads, sel);
        QCOMPARE(m.missingRows, 4);
        QVERIFY(std::isnan(m.at(2, 1)));

        HeadStreams x;
        x.tokens = 3; // covers the first three positions only
        x.loop = 2;
        x.layer = 1;
        x.heads = {1};
        x.global.assign(9, 0.0f);
        x.local.assign(9, 0.0f);
        x.gate.assign(3, 0.5f);
        for (int i = 0; i < 3; ++i) {
            x.global[size_t(i * 3 + i)] = 1.0f;
            x.local[size_t(i * 3)] = 1.0f;
        }
        m = buildAttentionMatrix(steps, synthetic::kHeads, sel, &x);
        QCOMPARE(m.exactRows, 3);
        QCOMPARE(m.missingRows, 1);
        QCOMPARE(m.at(2, 2), 1.0f);
        sel.stream = AttentionSelection::Stream::Mixed;
        m = buildAttentionMatrix(steps, synthetic::kHeads, sel, &x);
        QCOMPARE(m.at(2, 2), 0.5f);
        QCOMPARE(m.at(2, 0), 0.5f);
        // Another layer's exact map does not apply.
        sel.layer = 0;
        QCOMPARE(buildAttentionMatrix(steps, synthetic::kHeads, sel, &x).exactRows, 0);
    }

    void colourMaps()
    {
        using namespace HeatmapColors;
        QCOMPARE(sequentialColor(1.0), sequential().back());
        QCOMPARE(sequentialColor(0.0), sequential().front());
        QCOMPARE(sequentialColor(std::nan("")), kMissing);
        QCOMPARE(divergingColor(1.0), diverging().back());
        QCOMPARE(divergingColor(-1.0), diverging().front());
        QVERIFY(qRed(divergingColor(1.0)) > qBlue(divergingColor(1.0)));   // positive: red
        QVERIFY(qBlue(divergingColor(-1.0)) > qRed(divergingColor(-1.0))); // negative: blue

        const float v[] = {0.0f, 1.0f, std::nanf(""), 0.5f, 2.0f, -1.0f};
        const QImage img = colorize(v, 2, 3, Scale{});
        QCOMPARE(img.size(), QSize(3, 2));
        QCOMPARE(img.pixel(0, 0), sequential().front());
        QCOMPARE(img.pixel(1, 0), sequential().back());
        QCOMPARE(img.pixel(2, 0), kMissing);
        QCOMPARE(img.pixel(0, 1), sequentialColor(0.5));
        QCOMPARE(img.pixel(1, 1), sequential().back());  // clamped
        QCOMPARE(img.pixel(2, 1), sequential().front()); // clamped
        Scale sq;
        sq.gamma = 0.5f;
        QCOMPARE(colorize(v + 3, 1, 1, sq).pixel(0, 0), sequentialColor(std::sqrt(0.5)));
        Scale d;
        d.diverging = true;
        d.high = 0.5f;
        const float dv[] = {0.5f, -0.5f, 0.0f};
        const QImage di = colorize(dv, 1, 3, d);
        QCOMPARE(di.pixel(0, 0), diverging().back());
        QCOMPARE(di.pixel(1, 0), diverging().front());
        QCOMPARE(di.pixel(2, 0), divergingColor(0.0));
        // Rows long enough for the vector path: same colours as the scalar mapping, NaN included.
        std::vector<float> row(37);
        for (size_t i = 0; i < row.size(); ++i) row[i] = float(i) / 36.0f;
        row[3] = std::nanf("");
        for (size_t i = 8; i < 16; ++i) row[i] = 0.0f; // a run of zeros (the fast path)
        row[20] = 7.0f;
        row[21] = -3.0f;
        const QImage wide = colorize(row.data(), 1, int(row.size()), Scale{});
        for (int c = 0; c < int(row.size()); ++c) {
            const float x = row[size_t(c)];
            const QRgb want =
                std::isnan(x) ? kMissing
                              : sequential()[size_t(std::clamp(x * (kLutSize - 1) + 0.5f, 0.0f, float(kLutSize - 1)))];
            QCOMPARE(wide.pixel(c, 0), want);
        }
        // Banded colouring gives the same image.
        std::vector<float> big(300 * 200);
        for (size_t i = 0; i < big.size(); ++i) big[i] = float(i % 97) / 96.0f;
        QCOMPARE(colorize(big.data(), 300, 200, Scale{}, 4), colorize(big.data(), 300, 200, Scale{}, 1));
    }

    void viewDrawsKnownCellsAndFollowsInput()
    {
        RunDocument doc;
        StepSelection selection;
        FakeExactSource source;
        AttentionHeatmapView view;
        view.setDocument(&doc);
        view.setSelection(&selection);
        view.setExactSource(&source);
        view.setScaleMode(AttentionHeatmapView::ScaleMode::Unit);
        view.resize(500, 420);
        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));

        doc.beginRun(prompt(), 300);
        doc.appendSteps(generated(3));
        QSignalSpy rendered(&view, &AttentionHeatmapView::rendered);
        doc.setTrace(synthetic::trace(5));
        QTRY_VERIFY(rendered.count() >= 1);
        QTRY_VERIFY(view.matrix() && view.matrix()->rows == 5);
        QVERIFY(!view.isShowingPartial());
        QVERIFY(view.statusText().contains("full rows"));

        // The image: one pixel per cell; p = 1 is the colour map's top colour, 0 its bottom.
        HeatmapCanvas* canvas = view.canvas();
        QCOMPARE(canvas->image().pixel(0, 3), HeatmapColors::sequential().back());
        QCOMPARE(canvas->image().pixel(1, 3), HeatmapColors::sequential().front());
        // And on screen, at the cell's place.
        const QImage shot = canvas->grab().toImage();
        const QPoint hot = canvas->cellRect(3, 0).center().toPoint();
        const QPoint cold = canvas->cellRect(3, 2).center().toPoint();
        QVERIFY(near(shot.pixel(hot), HeatmapColors::sequential().back()));
        QVERIFY(near(shot.pixel(cold), HeatmapColors::sequential().front()));
        QCOMPARE(canvas->cellAt(canvas->cellRect(4, 1).center()), QPoint(1, 4));

        // Hover text: query and key tokens and the value.
        const QString hover = view.cellDescription(3, 0);
        QVERIFY2(hover.contains("query 3") && hover.contains("g1") && hover.contains("key 0") &&
                     hover.contains("&lt;s&gt;") && hover.contains("1.0000"),
                 qPrintable(hover));

        // A click selects the row's position; the selected row is outlined.
        QTest::mouseClick(canvas, Qt::LeftButton, {}, canvas->cellRect(2, 1).center().toPoint());
        QCOMPARE(selection.position(), 2);
        QCOMPARE(canvas->highlightRow(), 2);
        selection.setPosition(4);
        QCOMPARE(canvas->highlightRow(), 4);

        // Zoom keeps the cell under the anchor; fit restores the view.
        const QPointF anchor = canvas->cellRect(2, 2).center();
        canvas->zoomBy(2.0, anchor);
        QCOMPARE(canvas->cellAt(anchor), QPoint(2, 2));
        QVERIFY(!canvas->isFitted());
        QTest::keyClick(canvas, Qt::Key_F);
        QVERIFY(canvas->isFitted());
        const QPointF before = canvas->offset();
        QTest::keyClick(canvas, Qt::Key_Left);
        QVERIFY(canvas->offset().x() > before.x());

        // Keys step layers, heads and streams (the canvas passes them to the view).
        QTest::keyClick(canvas, Qt::Key_BracketRight);
        QCOMPARE(view.attentionSelection().layer, 1);
        QTest::keyClick(canvas, Qt::Key_BracketRight); // wraps
        QCOMPARE(view.attentionSelection().layer, 0);
        QTest::keyClick(canvas, Qt::Key_Period);
        QCOMPARE(view.attentionSelection().head, 1);
        QTest::keyClick(canvas, Qt::Key_Period); // wraps to the mean
        QCOMPARE(view.attentionSelection().head, -1);
        QTest::keyClick(canvas, Qt::Key_M);
        QCOMPARE(view.attentionSelection().head, 0);
        QTest::keyClick(canvas, Qt::Key_O);
        QCOMPARE(view.attentionSelection().loop, 2);
        QTest::keyClick(canvas, Qt::Key_X);
        QCOMPARE(view.attentionSelection().stream, AttentionSelection::Stream::Mixed);
        QTRY_VERIFY(!view.isBusy());
        QVERIFY(std::fabs(view.matrix()->at(3, 3) - 0.625f) < kTol);
        QVERIFY(AttentionHeatmapView::keyHelp().contains("next layer"));
    }

    void partialMapsFetchTheExactMap()
    {
        RunDocument doc;
        FakeExactSource source;
        AttentionHeatmapView view;
        view.setDocument(&doc);
        view.setExactSource(&source);
        view.resize(400, 400);
        doc.beginRun(prompt(), 300);
        doc.appendSteps(generated(2));
        doc.setTrace(synthetic::trace(4));
        AttentionSelection sel;
        sel.head = 1; // top-1 only
        view.setAttentionSelection(sel);
        // Hidden (another tab in front): nothing is built until the view is shown.
        QCoreApplication::processEvents();
        QVERIFY(!view.matrix() && !view.isBusy());
        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));
        QTRY_VERIFY(view.matrix() && view.matrix()->partialRows == 4);
        QVERIFY(view.isShowingPartial());
        QVERIFY2(view.statusText().contains("PARTIAL") && view.statusText().contains("top-1"),
                 qPrintable(view.statusText()));
        // The run is still going: nothing is fetched automatically.
        QVERIFY(source.requests.empty());

        // The run finishes: a short partial map is made exact automatically, for the selected head.
        QSignalSpy idle(&view, &AttentionHeatmapView::idle);
        doc.finishRun("max_tokens", {});
        QTRY_COMPARE(source.requests.size(), size_t(1));
        QCOMPARE(source.requests[0].heads, std::vector<int32_t>{1});
        QCOMPARE(source.requests[0].tokens, (std::vector<int32_t>{10, 11, 12, 13}));
        QVERIFY(view.isBusy());
        source.answer();
        QTRY_VERIFY(view.isShowingExact());
        QVERIFY(!view.isShowingPartial());
        QVERIFY(view.statusText().contains("exact"));
        QCOMPARE(view.matrix()->at(2, 2), 0.5f);
        QCOMPARE(view.matrix()->at(2, 0), 0.5f);
        QTRY_VERIFY(!view.isBusy());
        QVERIFY(idle.count() >= 1);

        // The head mean asks for every head; cancel reaches the source.
        sel.head = -1;
        view.setAttentionSelection(sel);
        QTRY_COMPARE(source.requests.size(), size_t(2));
        QVERIFY(source.requests[1].heads.empty());
        view.cancelExact();
        QCOMPARE(source.cancelled, std::vector<quint64>{2});
        QVERIFY(!view.isBusy() || view.matrix());
    }

    void noTraceShowsAHint()
    {
        RunDocument doc;
        AttentionHeatmapView view;
        view.setDocument(&doc);
        doc.beginRun(prompt(), 300);
        QVERIFY(view.canvas()->image().isNull());
        QVERIFY(view.canvas()->placeholderText().contains("capture policy"));
    }

    void watcherBatchesAppendsFromAnotherThread()
    {
        RunDocument doc;
        auto trace = std::make_shared<Trace>(synthetic::info());
        trace->append(synthetic::steps(0, 3));
        QList<QPair<qint64, qint64>> ranges;
        connect(&doc, &RunDocument::traceAppended, this, [&](qint64 a, qint64 b) { ranges.append({a, b}); });
        doc.setTrace(trace);
        constexpr int kSteps = 400;
        std::thread writer([trace] {
            for (int p = 3; p < kSteps; ++p) trace->append(synthetic::steps(p, p + 1));
        });
        writer.join();
        QTRY_COMPARE(doc.traceStepCount(), qint64(kSteps));
        QVERIFY(!ranges.isEmpty());
        QCOMPARE(ranges.first().first, qint64(0));
        for (int i = 1; i < ranges.size(); ++i) QCOMPARE(ranges[i].first, ranges[i - 1].second);
        QCOMPARE(ranges.last().second, qint64(kSteps));
        QVERIFY2(ranges.size() < kSteps / 4, qPrintable(QString::number(ranges.size()))); // batched
        // A new run forgets the trace and stops listening.
        doc.beginRun(prompt(), 300);
        QCOMPARE(doc.traceStepCount(), qint64(0));
        trace->append(synthetic::steps(kSteps, kSteps + 1));
        QTest::qWait(60);
        QCOMPARE(doc.traceStepCount(), qint64(0));
    }
};

QTEST_MAIN(TestHeatmapView)
#include "tst_heatmapview.moc"
