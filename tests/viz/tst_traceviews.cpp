// The routing and MCH views drawn offscreen from the hand-built trace (SyntheticRoutingTrace.h): grid cells and legend
// swatches have their expert's colour at known places, clicks select, the charts read the models through their
// mappers, designated heads stand out, and appended steps grow the views without a reset.
#include "SyntheticRoutingTrace.h"

#include "viz/ExpertColors.h"
#include "viz/ExpertLegend.h"
#include "viz/HeadRankingModel.h"
#include "viz/MchSeriesModel.h"
#include "viz/MchStreamsView.h"
#include "viz/RouterProbsModel.h"
#include "viz/RoutingGridView.h"
#include "viz/RoutingTableModel.h"
#include "viz/RoutingView.h"
#include "viz/StepSelection.h"
#include "viz/TraceFeed.h"

#include <QBarSeries>
#include <QBarSet>
#include <QChart>
#include <QChartView>
#include <QComboBox>
#include <QFont>
#include <QImage>
#include <QLabel>
#include <QLineSeries>
#include <QSignalSpy>
#include <QSortFilterProxyModel>
#include <QTableView>
#include <QtTest>

using namespace sage;
using namespace sage::test;

namespace {
constexpr double kTol = 1e-6;

QColor pixelAt(QWidget* w, const QPoint& p)
{
    return w->grab().toImage().pixelColor(p * w->devicePixelRatioF());
}

// Whether a pixel within `radius` of p has colour c (antialiased chart lines blend at their edges).
bool colourNear(const QImage& image, const QPoint& p, const QColor& c, int radius)
{
    for (int dy = -radius; dy <= radius; ++dy)
        for (int dx = -radius; dx <= radius; ++dx) {
            const QPoint q = p + QPoint(dx, dy);
            if (!image.rect().contains(q)) continue;
            const QColor got = image.pixelColor(q);
            if (std::abs(got.red() - c.red()) <= 8 && std::abs(got.green() - c.green()) <= 8 &&
                std::abs(got.blue() - c.blue()) <= 8)
                return true;
        }
    return false;
}
} // namespace

class TestTraceViews : public QObject
{
    Q_OBJECT

private slots:
    void gridCellsHaveTheirExpertsColour()
    {
        TraceFeed feed;
        StepSelection selection;
        RoutingView view;
        view.setFeed(&feed);
        view.setSelection(&selection);
        view.resize(900, 700);
        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));
        feed.setTrace(syntheticTrace());
        QCoreApplication::processEvents();

        RoutingGridView* grid = view.grid();
        QCOMPARE(view.loopCombo()->count(), 2);
        QVERIFY(view.loopCombo()->isEnabled());
        // Token 3, layer 1 goes to expert 2 in loop 1; token 0, layer 0 to expert 0.
        const QRect cell = grid->cellRect(3, 1);
        QVERIFY(!cell.isEmpty());
        QCOMPARE(pixelAt(grid->viewport(), cell.center()), ExpertColors::color(2));
        QCOMPARE(pixelAt(grid->viewport(), grid->cellRect(0, 0).center()), ExpertColors::color(0));
        QCOMPARE(pixelAt(grid->viewport(), grid->cellRect(4, 1).center()), ExpertColors::color(3));
        // The legend's swatch of expert 2 has the same colour.
        ExpertLegend* legend = view.legend();
        QCOMPARE(legend->expertCount(), kExperts);
        QCOMPARE(pixelAt(legend, legend->swatchRect(2).center()), ExpertColors::color(2));
        QCOMPARE(grid->cellAt(cell.center()), qMakePair(3, 1));

        // Loop 2 moved token 0 / layer 1 to expert 1.
        view.setLoop(2);
        QCOMPARE(view.loopCombo()->currentIndex(), 1);
        QCOMPARE(pixelAt(grid->viewport(), grid->cellRect(0, 1).center()), ExpertColors::color(1));
        QCOMPARE(pixelAt(grid->viewport(), grid->cellRect(3, 1).center()), ExpertColors::color(2));
    }

    void clickingACellSelectsItAndShowsItsRouter()
    {
        TraceFeed feed;
        StepSelection selection;
        RoutingView view;
        view.setFeed(&feed);
        view.setSelection(&selection);
        view.resize(900, 700);
        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));
        feed.setTrace(syntheticTrace());
        QCoreApplication::processEvents();

        // Before any click the router chart shows the newest token at layer 0, not an empty chart.
        QTRY_VERIFY(feed.stepCount() > 0);
        QTRY_COMPARE(view.routerProbsModel()->position(), feed.origin() + feed.stepCount() - 1);
        QCOMPARE(view.routerProbsModel()->layer(), 0);
        QVERIFY(view.routerProbsModel()->hasCell());
        QVERIFY2(view.cellLabel()->text().startsWith("Position"), qPrintable(view.cellLabel()->text()));

        RoutingGridView* grid = view.grid();
        QSignalSpy clicked(grid, &RoutingGridView::cellClicked);
        const QRect cell = grid->cellRect(3, 1);
        const QColor before = pixelAt(grid->viewport(), QPoint(cell.left() - 1, cell.center().y()));
        QTest::mouseClick(grid->viewport(), Qt::LeftButton, {}, cell.center());
        QCOMPARE(clicked.count(), 1);
        QCOMPARE(selection.position(), 3);
        QCOMPARE(grid->selectedLayer(), 1);
        // The selected column is outlined (the pixel left of its edge changes colour), the cell centre keeps its
        // expert colour.
        const QColor after = pixelAt(grid->viewport(), QPoint(cell.left() - 1, cell.center().y()));
        QVERIFY(after != before);
        QCOMPARE(pixelAt(grid->viewport(), cell.center()), ExpertColors::color(2));

        // The router chart reads the cell's softmax through its bar mapper; the chosen experts are selected bars.
        RouterProbsModel* probs = view.routerProbsModel();
        QCOMPARE(probs->position(), 3);
        QCOMPARE(probs->layer(), 1);
        QCOMPARE(view.routerSeries()->count(), 1);
        QBarSet* set = view.routerSeries()->barSets().front();
        QCOMPARE(set->count(), kExperts);
        QVERIFY(std::abs(set->at(2) - 0.6) < kTol);
        QVERIFY(std::abs(set->at(3) - 0.3) < kTol);
        QVERIFY(std::abs(set->at(0) - 0.05) < kTol);
        QVERIFY(set->isBarSelected(2) && set->isBarSelected(3) && !set->isBarSelected(0));
        QVERIFY(view.cellLabel()->text().contains("router softmax"));

        // A selection made elsewhere follows at the last clicked layer.
        selection.setPosition(0);
        QCOMPARE(probs->position(), 0);
        QCOMPARE(probs->layer(), 1);
        QVERIFY(std::abs(set->at(3) - 0.6) < kTol); // position 0, layer 1: a = 3
    }

    void loadAndChangeChartsReadTheirModels()
    {
        TraceFeed feed;
        RoutingView view;
        view.setFeed(&feed);
        view.resize(900, 700);
        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));
        feed.setTrace(syntheticTrace());
        QCoreApplication::processEvents();

        const QList<QBarSet*> load = view.loadSeries()->barSets();
        QCOMPARE(load.size(), 2); // one bar set per loop
        QCOMPARE(load[0]->label(), QStringLiteral("Loop 1"));
        QVERIFY(std::abs(load[0]->at(0) - 0.30) < kTol);
        QVERIFY(std::abs(load[1]->at(3) - 0.20) < kTol);

        const QList<QBarSet*> byLayer = view.changeByLayerSeries()->barSets();
        QCOMPARE(byLayer.size(), 1);
        QCOMPARE(byLayer[0]->count(), kLayers);
        QVERIFY(std::abs(byLayer[0]->at(1) - 0.6) < kTol);
        QLineSeries* byToken = view.changeByTokenSeries();
        QCOMPARE(byToken->count(), kPositions);
        QCOMPARE(byToken->at(2), QPointF(2, 0.5));
        QCOMPARE(byToken->at(3), QPointF(3, 0.0));

        // Steps appended later extend the token series point by point and the grid by columns.
        auto trace = syntheticTrace(3);
        feed.setTrace(trace);
        QCOMPARE(byToken->count(), 3);
        QSignalSpy resets(view.routingModel(), &QAbstractItemModel::modelReset);
        appendSynthetic(*trace, 3, kPositions);
        QTRY_COMPARE(byToken->count(), kPositions);
        QCOMPARE(view.routingModel()->rowCount(), kPositions);
        QCOMPARE(resets.count(), 0);
        QCOMPARE(byToken->at(4), QPointF(4, 0.5));
    }

    void chartsFollowTheTheme()
    {
        // Every chart takes its background, text and axis colours from the palette, and follows a palette
        // change (the dark theme) with no new data; the drawn background is the palette's.
        TraceFeed feed;
        StepSelection selection;
        RoutingView routing;
        routing.setFeed(&feed);
        routing.setSelection(&selection);
        MchStreamsView mch;
        mch.setFeed(&feed);
        mch.setSelection(&selection);
        feed.setTrace(syntheticTrace());
        const std::vector<QChartView*> views = {
            routing.routerChart(),        routing.loadChart(), routing.changeByLayerChart(),
            routing.changeByTokenChart(), mch.gateChart(),     mch.divergenceChart()};
        QPalette dark;
        dark.setColor(QPalette::Base, QColor(0x1f, 0x21, 0x24));
        dark.setColor(QPalette::Text, QColor(0xe6, 0xe6, 0xe6));
        dark.setColor(QPalette::Window, QColor(0x2b, 0x2d, 0x31));
        dark.setColor(QPalette::WindowText, QColor(0xe6, 0xe6, 0xe6));
        for (const QPalette& palette : {dark, QPalette(Qt::white)}) {
            routing.setPalette(palette);
            mch.setPalette(palette);
            const QColor base = palette.color(QPalette::Base), text = palette.color(QPalette::Text);
            for (QChartView* v : views) {
                QChart* chart = v->chart();
                QCOMPARE(chart->backgroundBrush().color(), base);
                QCOMPARE(chart->titleBrush().color(), text);
                QCOMPARE(chart->legend()->labelColor(), text);
                QVERIFY(!chart->axes().isEmpty());
                for (QAbstractAxis* axis : chart->axes()) {
                    QCOMPARE(axis->labelsColor(), text);
                    QCOMPARE(axis->titleBrush().color(), text);
                    QVERIFY(axis->gridLineColor() != base);
                }
            }
            routing.resize(900, 700);
            routing.show();
            QVERIFY(QTest::qWaitForWindowExposed(&routing));
            const QImage image = routing.loadChart()->grab().toImage();
            QCOMPARE(image.pixelColor(2, 2), base); // a corner of the chart: its background
            routing.hide();
        }
    }

    void mchChartsAndRanking()
    {
        TraceFeed feed;
        StepSelection selection;
        MchStreamsView view;
        view.setFeed(&feed);
        view.setSelection(&selection);
        view.setDesignatedHeads({{1, 2}});
        view.resize(900, 800);
        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));
        feed.setTrace(syntheticTrace());
        QCoreApplication::processEvents();

        // The view opens on the layer of the first designated head, loop 2.
        QCOMPARE(view.loop(), 2);
        QCOMPARE(view.layer(), 1);
        QCOMPARE(view.loopCombo()->count(), 1);
        QCOMPARE(view.layerCombo()->count(), kLayers);
        QLineSeries* gate2 = view.gateSeries(2);
        QVERIFY(gate2);
        QCOMPARE(gate2->count(), kPositions);
        QVERIFY(std::abs(gate2->at(3).y() - (0.3 + 0.03)) < kTol);
        QCOMPARE(gate2->at(3).x(), 3.0);
        QVERIFY(std::abs(view.divergenceSeries(0)->at(1).y() - 0.05) < kTol);
        // The designated head is thick with markers and named with a star; the others are thin.
        QVERIFY(gate2->pointsVisible());
        QVERIFY(gate2->pen().widthF() > 2.5);
        QCOMPARE(gate2->name(), QStringLiteral("h2 ★"));
        QVERIFY(!view.gateSeries(0)->pointsVisible());

        // A pixel on the designated head's line at position 2 has its colour.
        QChartView* chartView = view.gateChart();
        const QPointF scenePoint =
            chartView->chart()->mapToScene(chartView->chart()->mapToPosition(gate2->at(2), gate2));
        const QPoint viewPoint = chartView->mapFromScene(scenePoint);
        const QImage image = chartView->grab().toImage();
        QVERIFY2(colourNear(image, viewPoint * chartView->devicePixelRatioF(), gate2->pen().color(), 2),
                 qPrintable(QStringLiteral("no %1 pixel near (%2, %3)")
                                .arg(gate2->pen().color().name())
                                .arg(viewPoint.x())
                                .arg(viewPoint.y())));

        // Another layer: same series, new values, no designated head there.
        view.setLoopLayer(2, 0);
        QVERIFY(std::abs(view.divergenceSeries(2)->at(0).y() - 0.4) < kTol);
        QVERIFY(!view.gateSeries(2)->pointsVisible());

        // The ranking table: sorted by score, the designated head first, bold and starred.
        QTableView* table = view.rankingTable();
        QCOMPARE(table->model()->rowCount(), kLayers * kHeads);
        const QModelIndex top = table->model()->index(0, HeadRankingModel::HeadColumn);
        QCOMPARE(top.data().toString(), QStringLiteral("★ 2"));
        QVERIFY(top.data(Qt::FontRole).value<QFont>().bold());
        // Clicking a row shows its layer.
        QTest::mouseClick(table->viewport(), Qt::LeftButton, {}, table->visualRect(top).center());
        QCOMPARE(view.layer(), 1);

        // The selected position draws a marker line in both charts.
        selection.setPosition(3);
        QVERIFY(view.gateChart()->chart()->series().size() == 1 + kHeads);
    }

    void mchLayerLeftOutByThePolicy()
    {
        // A policy narrowed to layer 0: the view starts there rather than on the designated head's layer 1, marks
        // layer 1 in the list, and says so in place of empty charts when layer 1 is chosen.
        TraceFeed feed;
        MchStreamsView view;
        view.setFeed(&feed);
        view.setDesignatedHeads({{1, 2}});
        view.resize(900, 800);
        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));
        TraceInfo info = syntheticInfo();
        info.policy = "standard (layers 0)";
        auto trace = std::make_shared<Trace>(info);
        std::vector<Trace::StepPtr> steps;
        for (int i = 0; i < kPositions; ++i) {
            std::shared_ptr<StepRecord> s = syntheticStep(i);
            std::erase_if(s->layers, [](const LayerRecord& r) { return r.layer == 1; });
            steps.push_back(s);
        }
        trace->append(std::move(steps));
        feed.setTrace(trace);
        QCoreApplication::processEvents();
        QTRY_COMPARE(view.layer(), 0);
        QVERIFY(view.isCaptured(2, 0));
        QVERIFY(!view.isCaptured(2, 1));
        QCOMPARE(view.layerCombo()->itemText(0), QStringLiteral("Layer 0"));
        QCOMPARE(view.layerCombo()->itemText(1), QStringLiteral("Layer 1 (not captured)"));
        QVERIFY(view.notCapturedLabel()->isHidden());
        QVERIFY(view.gateChart()->isVisible());
        QCOMPARE(view.gateSeries(2)->count(), kPositions);

        view.setLoopLayer(2, 1);
        QVERIFY(view.notCapturedLabel()->isVisible());
        QVERIFY(!view.gateChart()->isVisible() && !view.divergenceChart()->isVisible());
        QVERIFY2(view.notCapturedLabel()->text().contains("layer 1 was not captured by this run's policy (standard "
                                                          "(layers 0))"),
                 qPrintable(view.notCapturedLabel()->text()));
        view.setLoopLayer(2, 0);
        QVERIFY(view.notCapturedLabel()->isHidden());
        QVERIFY(view.gateChart()->isVisible());
    }

    void placeholdersWithoutATrace()
    {
        TraceFeed feed;
        RoutingView routing;
        MchStreamsView mch;
        routing.setFeed(&feed);
        mch.setFeed(&feed);
        QCOMPARE(routing.routingModel()->rowCount(), 0);
        QCOMPARE(routing.legend()->expertCount(), 0);
        QVERIFY(!routing.loopCombo()->isEnabled());
        QCOMPARE(mch.gateSeries(0), nullptr);
        // A dense one-loop trace: no routing, no MCH streams, nothing crashes.
        TraceInfo info;
        info.layers = 2;
        info.heads = 2;
        auto trace = std::make_shared<Trace>(info);
        auto s = std::make_shared<StepRecord>();
        s->layers.resize(2);
        s->layers[0].loop = 1;
        s->layers[1].loop = 1;
        s->layers[1].layer = 1;
        trace->append({s});
        feed.setTrace(trace);
        QCOMPARE(routing.routingModel()->rowCount(), 1);
        QCOMPARE(routing.routingModel()->topExpert(0, 0), -1);
        QCOMPARE(mch.rankingModel()->rowCount(), 0);
        routing.resize(400, 300);
        mch.resize(400, 300);
        QVERIFY(!routing.grab().isNull());
        QVERIFY(!mch.grab().isNull());
    }
};

QTEST_MAIN(TestTraceViews)
#include "tst_traceviews.moc"
