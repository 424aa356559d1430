// The trace models of the routing and MCH views over a hand-built trace (SyntheticRoutingTrace.h): exact values,
// every model under QAbstractItemModelTester, and incremental growth when the trace is appended from another
// thread (rows inserted in one batch, never a reset).
#include "SyntheticRoutingTrace.h"

#include "viz/ExpertColors.h"
#include "viz/ExpertLoadModel.h"
#include "viz/HeadRankingModel.h"
#include "viz/MchSeriesModel.h"
#include "viz/RouterProbsModel.h"
#include "viz/RoutingChangeModel.h"
#include "viz/RoutingTableModel.h"
#include "viz/RunDocument.h"
#include "viz/TraceFeed.h"

#include <QAbstractItemModelTester>
#include <QFont>
#include <QSignalSpy>
#include <QSortFilterProxyModel>
#include <QtTest>

#include <thread>

using namespace sage;
using namespace sage::test;

namespace {
constexpr double kTol = 1e-6; // the records hold floats; expected values are exact decimals

bool near(double a, double b)
{
    return std::abs(a - b) <= kTol;
}

#define QCOMPARE_NEAR(actual, expected)                                                                                \
    QVERIFY2(near((actual), (expected)),                                                                               \
             qPrintable(QStringLiteral("%1 = %2, expected %3").arg(#actual).arg(actual, 0, 'g', 9).arg(expected)))

using Tester = QAbstractItemModelTester;
constexpr auto kReport = QAbstractItemModelTester::FailureReportingMode::QtTest;
} // namespace

class TestTraceModels : public QObject
{
    Q_OBJECT

private slots:
    void routingTableHasTopExpertPerTokenAndLayer()
    {
        TraceFeed feed;
        RoutingTableModel model;
        Tester tester(&model, kReport);
        model.setFeed(&feed);
        QCOMPARE(model.rowCount(), 0);
        QCOMPARE(model.columnCount(), 0);
        feed.setTrace(syntheticTrace());
        QCOMPARE(model.rowCount(), kPositions);
        QCOMPARE(model.columnCount(), kLayers);
        QCOMPARE(model.loopCount(), 2);
        for (int i = 0; i < kPositions; ++i)
            for (int l = 0; l < kLayers; ++l) {
                const int a = (i + 3 * l) % 4;
                QCOMPARE(model.index(i, l).data().toInt(), a);
                QCOMPARE(model.index(i, l).data(Qt::BackgroundRole).value<QColor>(), ExpertColors::color(a));
                QCOMPARE(model.index(i, l).data(RoutingTableModel::ExpertsRole).toList(),
                         (QVariantList{a, (a + 1) % 4}));
            }
        QCOMPARE(model.index(3, 1).data().toInt(), 2);
        QCOMPARE(model.index(3, 0).data(RoutingTableModel::PositionRole).toLongLong(), 3);
        QCOMPARE(model.index(3, 0).data(RoutingTableModel::TokenRole).toInt(), 13);
        QCOMPARE(model.headerData(1, Qt::Horizontal).toString(), QStringLiteral("L1"));
        QCOMPARE(model.rowOfPosition(4), 4);
        QCOMPARE(model.rowOfPosition(5), -1);

        // Loop 2: layer 1 of even positions moved by two experts; same shape, so no reset.
        QSignalSpy resets(&model, &QAbstractItemModel::modelReset);
        model.setLoop(2);
        QCOMPARE(resets.count(), 0);
        QCOMPARE(model.index(0, 1).data().toInt(), 1); // (0 + 3) % 4 + 2 = 5 % 4
        QCOMPARE(model.index(1, 1).data().toInt(), 0);
        QCOMPARE(model.index(2, 0).data().toInt(), 3); // listed in the other order: top-1 is b
        model.setLoop(7);
        QCOMPARE(model.loop(), 2);
    }

    void expertLoadIsTheShareOfRoutingSlots()
    {
        TraceFeed feed;
        ExpertLoadModel model;
        Tester tester(&model, kReport);
        model.setFeed(&feed);
        feed.setTrace(syntheticTrace());
        QCOMPARE(model.rowCount(), kExperts);
        QCOMPARE(model.columnCount(), 2);
        // 5 positions x 2 layers x top-2 = 20 slots per loop (counted by hand in SyntheticRoutingTrace.h's scheme).
        const double loop1[] = {0.30, 0.25, 0.20, 0.25};
        const double loop2[] = {0.25, 0.30, 0.25, 0.20};
        for (int e = 0; e < kExperts; ++e) {
            QCOMPARE_NEAR(model.index(e, 0).data().toDouble(), loop1[e]);
            QCOMPARE_NEAR(model.index(e, 1).data().toDouble(), loop2[e]);
        }
        QCOMPARE(model.index(0, 0).data(ExpertLoadModel::CountRole).toLongLong(), 6);
        QCOMPARE(model.index(0, 0).data(ExpertLoadModel::SlotsRole).toLongLong(), 20);
        QCOMPARE_NEAR(model.maxShare(), 0.30);
        QCOMPARE(model.headerData(1, Qt::Horizontal).toString(), QStringLiteral("Loop 2"));
        QCOMPARE(model.headerData(3, Qt::Vertical).toString(), QStringLiteral("E3"));
    }

    void routingChangesPerLayerAndPerToken()
    {
        TraceFeed feed;
        RoutingChangeModel byLayer(RoutingChangeModel::Axis::ByLayer), byToken(RoutingChangeModel::Axis::ByToken);
        Tester t1(&byLayer, kReport), t2(&byToken, kReport);
        byLayer.setFeed(&feed);
        byToken.setFeed(&feed);
        feed.setTrace(syntheticTrace());
        QCOMPARE(byLayer.rowCount(), kLayers);
        QCOMPARE(byLayer.columnCount(), 1);
        // Layer 0: only reordered, never changed; layer 1: positions 0, 2, 4 of 5 changed.
        QCOMPARE_NEAR(byLayer.index(0, 0).data().toDouble(), 0.0);
        QCOMPARE_NEAR(byLayer.index(1, 0).data().toDouble(), 0.6);
        QCOMPARE(byLayer.index(1, 0).data(RoutingChangeModel::ChangedRole).toLongLong(), 3);
        QCOMPARE(byLayer.index(1, 0).data(RoutingChangeModel::ComparedRole).toLongLong(), 5);
        QCOMPARE(byToken.rowCount(), kPositions);
        QCOMPARE(byToken.columnCount(), 2);
        for (int i = 0; i < kPositions; ++i) {
            QCOMPARE_NEAR(byToken.index(i, 0).data().toDouble(), double(i));
            QCOMPARE_NEAR(byToken.index(i, 1).data().toDouble(), i % 2 == 0 ? 0.5 : 0.0);
        }
        // A trace with one loop cannot be compared: both models are empty.
        auto oneLoop = std::make_shared<Trace>([] {
            TraceInfo info = syntheticInfo();
            info.loops = 1;
            return info;
        }());
        feed.setTrace(oneLoop);
        QVERIFY(!byLayer.comparable());
        QCOMPARE(byLayer.rowCount(), 0);
        QCOMPARE(byToken.rowCount(), 0);
    }

    void routerProbsOfOneCell()
    {
        TraceFeed feed;
        RouterProbsModel model;
        Tester tester(&model, kReport);
        model.setFeed(&feed);
        model.setCell(3, 1, 1); // before the trace: filled in when the position arrives
        QVERIFY(!model.hasCell());
        auto trace = std::make_shared<Trace>(syntheticInfo());
        feed.setTrace(trace);
        QCOMPARE(model.rowCount(), kExperts);
        QVERIFY(!model.hasCell());
        appendSynthetic(*trace, 0, kPositions);
        feed.flush();
        QVERIFY(model.hasCell());
        QVERIFY(model.fullDistribution());
        // Position 3, layer 1: a = 2 (0.6), b = 3 (0.3).
        const double expected[] = {0.05, 0.05, 0.6, 0.3};
        for (int e = 0; e < kExperts; ++e) QCOMPARE_NEAR(model.index(e, 0).data().toDouble(), expected[e]);
        QCOMPARE(model.index(2, 0).data(RouterProbsModel::RankRole).toInt(), 0);
        QCOMPARE(model.index(3, 0).data(RouterProbsModel::RankRole).toInt(), 1);
        QCOMPARE(model.index(0, 0).data(RouterProbsModel::ChosenRole).toBool(), false);

        // Without the full softmax (summary capture) the chosen weights stand in.
        auto summary = std::make_shared<Trace>(syntheticInfo());
        auto s = std::make_shared<StepRecord>(*syntheticStep(0));
        for (LayerRecord& r : s->layers) r.routerProbs.clear();
        summary->append({s});
        feed.setTrace(summary);
        model.setCell(0, 1, 0);
        QVERIFY(model.hasCell());
        QVERIFY(!model.fullDistribution());
        QCOMPARE_NEAR(model.probability(0), 0.6);
        QCOMPARE_NEAR(model.probability(1), 0.3);
        QCOMPARE_NEAR(model.probability(2), 0.0);
        model.setCell(-1, 1, 0);
        QVERIFY(!model.hasCell());
    }

    void mchSeriesPerHead()
    {
        TraceFeed feed;
        MchSeriesModel gate(MchSeriesModel::Quantity::Gate), divergence(MchSeriesModel::Quantity::Divergence);
        Tester t1(&gate, kReport), t2(&divergence, kReport);
        gate.setFeed(&feed);
        divergence.setFeed(&feed);
        feed.setTrace(syntheticTrace());
        gate.setLoopLayer(2, 1);
        divergence.setLoopLayer(2, 1);
        QCOMPARE(gate.rowCount(), kPositions);
        QCOMPARE(gate.columnCount(), 1 + kHeads);
        for (int i = 0; i < kPositions; ++i) {
            QCOMPARE_NEAR(gate.index(i, 0).data().toDouble(), double(i));
            for (int h = 0; h < kHeads; ++h) {
                QCOMPARE_NEAR(gate.index(i, 1 + h).data().toDouble(), 0.1 * (h + 1) + 0.01 * i);
                QCOMPARE_NEAR(divergence.index(i, 1 + h).data().toDouble(), 0.2 * h + 0.05);
            }
        }
        QCOMPARE(gate.headerData(2, Qt::Horizontal).toString(), QStringLiteral("h1"));
        // Loop 1 has one stream: no values (0 for the chart, flagged invalid).
        gate.setLoopLayer(1, 0);
        QCOMPARE(gate.index(0, 1).data().toDouble(), 0.0);
        QCOMPARE(gate.index(0, 1).data(MchSeriesModel::HasValueRole).toBool(), false);
        QVERIFY(std::isnan(gate.value(0, 0)));
    }

    void headRankingSortsAndMarksDesignatedHeads()
    {
        TraceFeed feed;
        HeadRankingModel model;
        Tester tester(&model, kReport);
        model.setFeed(&feed);
        model.setDesignatedHeads({{1, 2}});
        feed.setTrace(syntheticTrace());
        QCOMPARE(model.rowCount(), kLayers * kHeads);
        QCOMPARE(model.columnCount(), int(HeadRankingModel::ColumnCount));
        for (int l = 0; l < kLayers; ++l)
            for (int h = 0; h < kHeads; ++h) {
                const double div = 0.2 * h + 0.05 * l;
                const double gate = 0.1 * (h + 1) + 0.02; // mean of 0.01 i over i = 0..4
                QCOMPARE_NEAR(model.meanDivergence(l, h), div);
                QCOMPARE_NEAR(model.meanGate(l, h), gate);
                QCOMPARE_NEAR(model.normRatio(l, h), 0.5);
                QCOMPARE_NEAR(model.score(l, h), div * gate); // g < 0.5: min(g, 1 - g) = g
                const int row = l * kHeads + h;
                QCOMPARE_NEAR(
                    model.index(row, HeadRankingModel::ScoreColumn).data(HeadRankingModel::SortRole).toDouble(),
                    div * gate);
                QCOMPARE(model.index(row, HeadRankingModel::LayerColumn).data().toInt(), l);
                QCOMPARE(model.index(row, 0).data(HeadRankingModel::SamplesRole).toLongLong(), kPositions);
            }
        // The designated head: bold, with a marker before its number.
        const int designatedRow = 1 * kHeads + 2;
        QVERIFY(model.index(designatedRow, HeadRankingModel::HeadColumn).data(Qt::FontRole).value<QFont>().bold());
        QCOMPARE(model.index(designatedRow, HeadRankingModel::HeadColumn).data().toString(), QStringLiteral("★ 2"));
        QVERIFY(model.index(designatedRow, 0).data(HeadRankingModel::DesignatedRole).toBool());
        QVERIFY(!model.index(0, HeadRankingModel::HeadColumn).data(Qt::FontRole).isValid());
        QCOMPARE(model.index(0, HeadRankingModel::HeadColumn).data().toString(), QStringLiteral("0"));
        QCOMPARE(model.index(0, HeadRankingModel::DivergenceColumn).data().toString(), QStringLiteral("0.0000"));

        // Sorted by score (descending): layer 1 head 2 (0.45 x 0.32) first, then layer 0 head 2, ...
        QSortFilterProxyModel proxy;
        Tester proxyTester(&proxy, kReport);
        proxy.setSourceModel(&model);
        proxy.setSortRole(HeadRankingModel::SortRole);
        proxy.sort(HeadRankingModel::ScoreColumn, Qt::DescendingOrder);
        QCOMPARE(proxy.index(0, HeadRankingModel::LayerColumn).data().toInt(), 1);
        QCOMPARE(proxy.index(0, HeadRankingModel::HeadColumn).data().toString(), QStringLiteral("★ 2"));
        QCOMPARE(proxy.index(1, HeadRankingModel::LayerColumn).data().toInt(), 0);
        QCOMPARE(proxy.index(1, HeadRankingModel::HeadColumn).data().toString(), QStringLiteral("2"));
        proxy.sort(HeadRankingModel::GateColumn, Qt::AscendingOrder);
        QCOMPARE(proxy.index(0, HeadRankingModel::HeadColumn).data().toString(), QStringLiteral("0"));

        // A single-loop trace has no MCH streams: no rows.
        feed.setTrace(std::make_shared<Trace>(TraceInfo{}));
        QCOMPARE(model.rowCount(), 0);
    }

    // Appends on another thread arrive as one batch of inserted rows on the GUI thread: no reset, no
    // per-step signal, and the aggregate models update in place.
    void appendsFromAnotherThreadAreBatched()
    {
        auto trace = syntheticTrace(2);
        TraceFeed feed;
        RoutingTableModel routing;
        ExpertLoadModel load;
        Tester t1(&routing, kReport), t2(&load, kReport);
        routing.setFeed(&feed);
        load.setFeed(&feed);
        feed.setTrace(trace);
        QCOMPARE(routing.rowCount(), 2);
        QSignalSpy batches(&feed, &TraceFeed::stepsAppended);
        QSignalSpy inserted(&routing, &QAbstractItemModel::rowsInserted);
        QSignalSpy resets(&routing, &QAbstractItemModel::modelReset);
        QSignalSpy loadResets(&load, &QAbstractItemModel::modelReset);
        std::thread writer([&] {
            for (int i = 2; i < kPositions; ++i) appendSynthetic(*trace, i, i + 1);
        });
        writer.join();
        QTRY_COMPARE(routing.rowCount(), kPositions);
        QCOMPARE(batches.count(), 1);
        QCOMPARE(batches.front().at(0).toLongLong(), 2);
        QCOMPARE(batches.front().at(1).toLongLong(), qint64(kPositions));
        QCOMPARE(inserted.count(), 1);
        QCOMPARE(inserted.front().at(1).toInt(), 2);
        QCOMPARE(inserted.front().at(2).toInt(), kPositions - 1);
        QCOMPARE(resets.count(), 0);
        QCOMPARE(loadResets.count(), 0);
        QCOMPARE_NEAR(load.index(0, 0).data().toDouble(), 0.30);
        QCOMPARE(routing.index(3, 1).data().toInt(), 2);
    }

    void followsTheDocumentsTrace()
    {
        RunDocument doc;
        TraceFeed feed;
        feed.setDocument(&doc);
        RoutingTableModel model;
        model.setFeed(&feed);
        QVERIFY(!feed.hasTrace());
        doc.setTrace(syntheticTrace());
        QCOMPARE(model.rowCount(), kPositions);
        QCOMPARE(feed.stepAtPosition(4)->token, 14);
        QVERIFY(feed.stepAtPosition(5) == nullptr);
        doc.beginRun({}, 32); // a new run drops the trace
        QVERIFY(!feed.hasTrace());
        QCOMPARE(model.rowCount(), 0);
    }

    // A model whose feed is deleted first empties instead of reading the feed's released records.
    void feedDeletedBeforeTheModel()
    {
        RoutingTableModel model;
        Tester tester(&model, kReport);
        auto* feed = new TraceFeed;
        model.setFeed(feed);
        feed->setTrace(syntheticTrace());
        QCOMPARE(model.rowCount(), kPositions);
        delete feed;
        QCOMPARE(model.rowCount(), 0);
        QCOMPARE(model.columnCount(), 0);
    }

    // The feed detaches from a trace that outlives it: later appends reach no deleted object.
    void traceOutlivesTheFeed()
    {
        auto trace = syntheticTrace(1);
        {
            TraceFeed feed;
            feed.setTrace(trace);
            QCOMPARE(feed.stepCount(), 1);
        }
        appendSynthetic(*trace, 1, 3);
        QCoreApplication::processEvents();
        QCOMPARE(trace->size(), 3);
    }
};

QTEST_MAIN(TestTraceModels)
#include "tst_tracemodels.moc"
