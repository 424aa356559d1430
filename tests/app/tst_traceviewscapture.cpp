// The routing and MCH views over a real trace: the bundled model (resources/models/sage-mini-coder) generates
// with capture on a worker thread while the views follow the RunDocument's trace. Only structure is asserted
// (shapes, ranges, designated heads, incremental growth), never tokens: the model may be retrained.
#include "engine/capture/CaptureGeneration.h"
#include "engine/capture/CapturePolicy.h"
#include "engine/capture/Trace.h"
#include "engine/capture/TraceRecorder.h"
#include "engine/cpu/ThreadPool.h"
#include "engine/model/Model.h"
#include "engine/runtime/InferenceSession.h"
#include "viz/ExpertColors.h"
#include "viz/ExpertLoadModel.h"
#include "viz/HeadRankingModel.h"
#include "viz/MchSeriesModel.h"
#include "viz/MchStreamsView.h"
#include "viz/RoutingChangeModel.h"
#include "viz/RoutingGridView.h"
#include "viz/RoutingTableModel.h"
#include "viz/RoutingView.h"
#include "viz/RunDocument.h"
#include "viz/StepSelection.h"
#include "viz/TraceFeed.h"

#include <QBarSeries>
#include <QBarSet>
#include <QFont>
#include <QImage>
#include <QLineSeries>
#include <QSignalSpy>
#include <QtTest>

#include <atomic>
#include <thread>

using namespace sage;

class TestTraceViewsCapture : public QObject
{
    Q_OBJECT

private slots:
    void viewsFollowALiveCapture()
    {
        const QString dir = QStringLiteral(SAGE_SOURCE_DIR) + "/resources/models/sage-mini-coder";
        auto model = Model::load(dir.toStdString());
        const ModelConfig& config = model->config();
        QVERIFY2(config.numExperts > 0 && config.loopNum >= 2 && !config.mchHeads.empty(),
                 "the bundled model is expected to be a looped MoE model with mch_heads");
        cpu::ThreadPool pool(2);

        RunDocument doc;
        StepSelection selection;
        TraceFeed feed;
        feed.setDocument(&doc);
        RoutingView routing;
        routing.setFeed(&feed);
        routing.setSelection(&selection);
        MchStreamsView mch;
        mch.setFeed(&feed);
        mch.setSelection(&selection);
        QList<QPair<int, int>> designated;
        for (const auto& [l, h] : config.mchHeads) designated.append({int(l), int(h)});
        mch.setDesignatedHeads(designated);
        routing.resize(900, 700);
        mch.resize(900, 800);
        routing.show();
        mch.show();
        QVERIFY(QTest::qWaitForWindowExposed(&routing));

        // The recorder names the model's shape on the trace before the document shows it.
        auto trace = std::make_shared<Trace>();
        TraceRecorder recorder(*model, CapturePolicy::preset(CapturePreset::Standard, config), *trace);
        doc.setTrace(trace);
        QCOMPARE(routing.routingModel()->columnCount(), int(config.numHiddenLayers));
        QSignalSpy resets(routing.routingModel(), &QAbstractItemModel::modelReset);
        QSignalSpy inserted(routing.routingModel(), &QAbstractItemModel::rowsInserted);
        QSignalSpy gateResets(mch.gateModel(), &QAbstractItemModel::modelReset);

        std::atomic<bool> done{false};
        int64_t expectedSteps = 0;
        std::thread worker([&] {
            InferenceSession session(*model, pool);
            GenerationRequest request;
            request.prompt = {1, 100, 200, 300, 400, 500};
            request.maxNewTokens = 12;
            const GenerationResult r = captureGenerate(session, nullptr, request, recorder);
            expectedSteps = int64_t(request.prompt.size() + r.steps.size());
            done = true;
        });
        QTRY_VERIFY_WITH_TIMEOUT(done.load(), 120000);
        worker.join();
        QCOMPARE(trace->size(), expectedSteps);
        QTRY_COMPARE(routing.routingModel()->rowCount(), int(expectedSteps));
        const int T = int(expectedSteps);
        const int layers = int(config.numHiddenLayers), experts = int(config.numExperts);
        // Grown by appended rows only.
        QCOMPARE(resets.count(), 0);
        QCOMPARE(gateResets.count(), 0);
        QVERIFY(inserted.count() >= 1);

        // Routing: every cell of every loop has a top-1 expert, drawn in its colour.
        RoutingTableModel* table = routing.routingModel();
        for (int loop = 1; loop <= int(config.loopNum); ++loop) {
            routing.setLoop(loop);
            for (int row = 0; row < T; ++row)
                for (int l = 0; l < layers; ++l) {
                    const int e = table->topExpert(row, l);
                    QVERIFY2(e >= 0 && e < experts,
                             qPrintable(QString("row %1 layer %2: expert %3").arg(row).arg(l).arg(e)));
                }
        }
        routing.setLoop(1);
        QCoreApplication::processEvents();
        RoutingGridView* grid = routing.grid();
        const QRect cell = grid->cellRect(0, 0);
        QCOMPARE(grid->viewport()->grab().toImage().pixelColor(cell.center() * grid->devicePixelRatioF()),
                 ExpertColors::color(table->topExpert(0, 0)));

        // Load: each loop's shares sum to 1; change fractions lie in [0, 1].
        ExpertLoadModel* load = routing.loadModel();
        QCOMPARE(load->rowCount(), experts);
        QCOMPARE(load->columnCount(), int(config.loopNum));
        for (int loop = 0; loop < load->columnCount(); ++loop) {
            double sum = 0;
            for (int e = 0; e < experts; ++e) sum += load->index(e, loop).data().toDouble();
            QVERIFY(std::abs(sum - 1.0) < 1e-9);
        }
        QCOMPARE(routing.loadSeries()->count(), int(config.loopNum));
        QCOMPARE(routing.changeByLayerModel()->rowCount(), layers);
        QCOMPARE(routing.changeByTokenSeries()->count(), T);
        for (int l = 0; l < layers; ++l) {
            const double f = routing.changeByLayerModel()->fraction(l);
            QVERIFY(f >= 0 && f <= 1);
        }

        // Clicking a cell shows a full router softmax (standard capture keeps it).
        QTest::mouseClick(grid->viewport(), Qt::LeftButton, {}, grid->cellRect(T - 1, layers - 1).center());
        QCOMPARE(selection.position(), T - 1);
        QBarSet* probs = routing.routerSeries()->barSets().front();
        double sum = 0;
        for (int e = 0; e < probs->count(); ++e) sum += probs->at(e);
        QVERIFY(std::abs(sum - 1.0) < 1e-4);

        // MCH: one gate and divergence series per head with one point per token, gates in [0, 1]; the view
        // opens on a designated head's layer, whose series stand out.
        QCOMPARE(mch.loop(), 2);
        QCOMPARE(mch.layer(), designated.front().first);
        for (int h = 0; h < int(config.numAttentionHeads); ++h) {
            QLineSeries* g = mch.gateSeries(h);
            QVERIFY(g);
            QCOMPARE(g->count(), T);
            for (int i = 0; i < T; ++i) QVERIFY(g->at(i).y() >= 0.0 && g->at(i).y() <= 1.0);
            QCOMPARE(mch.divergenceSeries(h)->count(), T);
            QCOMPARE(g->pointsVisible(), mch.isDesignated(mch.layer(), h));
        }
        HeadRankingModel* ranking = mch.rankingModel();
        QCOMPARE(ranking->rowCount(), layers * int(config.numAttentionHeads));
        for (const auto& [l, h] : designated) {
            const QModelIndex head =
                ranking->index(l * int(config.numAttentionHeads) + h, HeadRankingModel::HeadColumn);
            QVERIFY(head.data(Qt::FontRole).value<QFont>().bold());
            QVERIFY(std::isfinite(ranking->meanGate(l, h)));
            QVERIFY(std::isfinite(ranking->meanDivergence(l, h)));
            QVERIFY(ranking->normRatio(l, h) > 0);
        }
    }
};

QTEST_MAIN(TestTraceViewsCapture)
#include "tst_traceviewscapture.moc"
