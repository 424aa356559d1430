// Loop comparison: the loop lens and gate statistics models under QAbstractItemModelTester while the trace
// grows, flips highlighted, and the three maps drawn from a hand-made trace (the difference map shows red
// where the later loop attends more and blue where it attends less).
#include "SyntheticTrace.h"

#include "viz/GateStatsModel.h"
#include "viz/HeatmapCanvas.h"
#include "viz/HeatmapColors.h"
#include "viz/LoopComparisonView.h"
#include "viz/LoopLensModel.h"
#include "viz/RunDocument.h"
#include "viz/StepSelection.h"

#include <QAbstractItemModelTester>
#include <QSignalSpy>
#include <QTableView>
#include <QtTest>

using namespace sage;

namespace {
// A Loops view on a document with a two-token run begun (not shown yet).
struct ViewUnderTest {
    RunDocument doc;
    StepSelection selection;
    LoopComparisonView view;

    ViewUnderTest()
    {
        view.setDocument(&doc);
        view.setSelection(&selection);
        view.resize(900, 700);
        doc.beginRun({{10, "a"}, {11, "b"}}, 300);
    }
};
} // namespace

class TestLoopComparison : public QObject
{
    Q_OBJECT

private slots:
    void lensModelStreamsAndMarksFlips()
    {
        RunDocument doc;
        LoopLensModel model;
        QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
        model.setDocument(&doc);
        QCOMPARE(model.rowCount(), 0);
        QCOMPARE(model.columnCount(), 0);

        doc.beginRun({{10, "a"}, {11, "b"}}, 300);
        auto trace = std::make_shared<Trace>(synthetic::info());
        doc.setTrace(trace);
        QCOMPARE(model.columnCount(), 6); // Pos, Token, After loop 1, After loop 2, Next, KL
        trace->append(synthetic::steps(0, 3));
        QTRY_COMPARE(model.rowCount(), 3);
        trace->append(synthetic::steps(3, 6));
        QTRY_COMPARE(model.rowCount(), 6);

        model.setTokenText([](int32_t id) { return QStringLiteral("t%1").arg(id); });
        for (int r = 0; r < 6; ++r) {
            const bool flip = r % 2 == 1;
            QCOMPARE(model.index(r, 0).data().toLongLong(), qint64(r));
            QCOMPARE(model.index(r, model.tokenColumn()).data().toString(), QStringLiteral("t%1").arg(10 + r));
            QCOMPARE(model.index(r, model.loopColumn(1)).data(LoopLensModel::TokenIdRole).toInt(), 100 + r);
            QCOMPARE(model.index(r, model.loopColumn(2)).data(LoopLensModel::TokenIdRole).toInt(),
                     flip ? 200 + r : 100 + r);
            QCOMPARE(model.index(r, model.loopColumn(1)).data(LoopLensModel::ProbabilityRole).toDouble(), 0.5);
            QCOMPARE(model.index(r, 0).data(LoopLensModel::FlipRole).toBool(), flip);
            // The loop-1 cell of a flipped row is highlighted; the final column never differs from itself.
            QCOMPARE(model.index(r, model.loopColumn(1)).data(LoopLensModel::DiffersRole).toBool(), flip);
            QCOMPARE(model.index(r, model.loopColumn(1)).data(Qt::BackgroundRole).isValid(), flip);
            QVERIFY(!model.index(r, model.loopColumn(2)).data(LoopLensModel::DiffersRole).toBool());
            QCOMPARE(model.index(r, model.klColumn()).data().toString(), QStringLiteral("0.125"));
        }
        QCOMPARE(model.flipCount(), 3);
        QVERIFY(model.index(0, model.loopColumn(1)).data().toString().startsWith("t100"));
        // Next token: the token at the following position; the last row has none yet.
        QCOMPARE(model.index(2, model.nextColumn()).data(LoopLensModel::TokenIdRole).toInt(), 13);
        QVERIFY(!model.index(5, model.nextColumn()).data(LoopLensModel::TokenIdRole).isValid());
        QVERIFY(model.headerData(model.loopColumn(2), Qt::Horizontal).toString().contains("final"));

        // A new run clears the table.
        doc.beginRun({{1, "x"}}, 300);
        QCOMPARE(model.rowCount(), 0);
    }

    void gateStatisticsPerLayerAndHead()
    {
        RunDocument doc;
        GateStatsModel model;
        QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
        model.setDocument(&doc);
        doc.beginRun({{10, "a"}}, 300);
        auto trace = std::make_shared<Trace>(synthetic::info());
        doc.setTrace(trace);
        QCOMPARE(model.rowCount(), synthetic::kLayers); // loop 2 x layers
        QCOMPARE(model.columnCount(), synthetic::kHeads);
        QVERIFY(!model.index(0, 0).data(GateStatsModel::MeanRole).isValid()); // nothing yet

        // Varying gates: position p gets head 0 gate 0.1 * p in layer 0.
        std::vector<Trace::StepPtr> steps;
        for (int p = 0; p < 5; ++p) {
            auto s = std::make_shared<StepRecord>(*synthetic::step(p));
            for (LayerRecord& r : s->layers)
                if (r.loop == 2 && r.layer == 0) r.gate[0] = 0.1f * float(p);
            steps.push_back(s);
        }
        trace->append({steps.begin(), steps.begin() + 2});
        QTRY_COMPARE(model.index(0, 0).data(GateStatsModel::CountRole).toLongLong(), qint64(2));
        trace->append({steps.begin() + 2, steps.end()});
        QTRY_COMPARE(model.index(0, 0).data(GateStatsModel::CountRole).toLongLong(), qint64(5));

        const QModelIndex c00 = model.index(model.rowOf(2, 0), 0);
        QVERIFY(std::fabs(c00.data(GateStatsModel::MeanRole).toDouble() - 0.2) < 1e-6);
        QVERIFY(std::fabs(c00.data(GateStatsModel::MinRole).toDouble() - 0.0) < 1e-6);
        QVERIFY(std::fabs(c00.data(GateStatsModel::MaxRole).toDouble() - 0.4) < 1e-6);
        QCOMPARE(c00.data().toString(), QStringLiteral("0.20"));
        const QModelIndex c01 = model.index(model.rowOf(2, 0), 1);
        QVERIFY(std::fabs(c01.data(GateStatsModel::MeanRole).toDouble() - 0.75) < 1e-6);
        QCOMPARE(model.index(model.rowOf(2, 1), 1).data(GateStatsModel::MaxRole).toDouble(), 0.5);
        // Colour: above 0.5 leans red (global), below blue (local).
        const QColor high = c01.data(Qt::BackgroundRole).value<QColor>();
        const QColor low = c00.data(Qt::BackgroundRole).value<QColor>();
        QVERIFY(high.red() > high.blue());
        QVERIFY(low.blue() > low.red());
        QVERIFY(c00.data(Qt::ToolTipRole).toString().contains("min 0.0000"));
        QCOMPARE(model.rowOf(1, 0), -1);
    }

    void hiddenViewRendersWhenShown()
    {
        // Behind another tab the view builds nothing (no render job is even queued); shown, it renders the
        // trace as it is then, and its tables follow the trace all along.
        ViewUnderTest t;
        RunDocument& doc = t.doc;
        LoopComparisonView& view = t.view;
        QSignalSpy rendered(&view, &LoopComparisonView::rendered);
        doc.setTrace(synthetic::trace(5));
        view.setLayerHead(1, 0);
        view.setLaterLoop(2, AttentionSelection::Stream::Global);
        QVERIFY(!view.isVisible());
        QVERIFY(!view.isBusy());
        QCoreApplication::processEvents();
        QCOMPARE(rendered.count(), 0);
        QVERIFY(!view.firstMatrix());
        QCOMPARE(view.lensModel()->rowCount(), 5);

        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));
        QTRY_VERIFY(rendered.count() >= 1 && !view.isBusy());
        QVERIFY(view.firstMatrix() && view.laterMatrix() && view.differenceMatrix());
        QCOMPARE(view.firstMatrix()->rows, 5);

        // Hidden again: a newer selection waits for the next show.
        view.hide();
        const int before = int(rendered.count());
        view.setLayerHead(0, 0);
        QVERIFY(!view.isBusy());
        QCoreApplication::processEvents();
        QCOMPARE(int(rendered.count()), before);
        view.show();
        QTRY_VERIFY(rendered.count() > before && !view.isBusy());
        QVERIFY(view.statusText().startsWith("Layer 0"));
    }

    void mapsAndDifferenceColours()
    {
        ViewUnderTest t;
        RunDocument& doc = t.doc;
        LoopComparisonView& view = t.view;
        StepSelection& selection = t.selection;
        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));
        QSignalSpy rendered(&view, &LoopComparisonView::rendered);
        doc.setTrace(synthetic::trace(5));
        view.setLaterLoop(2, AttentionSelection::Stream::Global);
        QTRY_VERIFY(rendered.count() >= 1 && !view.isBusy());
        QVERIFY(view.firstMatrix() && view.laterMatrix() && view.differenceMatrix());
        QCOMPARE(view.lensModel()->rowCount(), 5);
        QCOMPARE(view.gateModel()->rowCount(), synthetic::kLayers);

        // Loop 1 attends to key 0, loop 2 (global) to the diagonal: later - first = +1 on the diagonal (p > 0)
        // and -1 on key 0.
        const QImage a = view.firstCanvas()->image();
        const QImage b = view.laterCanvas()->image();
        const QImage d = view.differenceCanvas()->image();
        QCOMPARE(a.pixel(0, 3), HeatmapColors::sequential().back());
        QCOMPARE(b.pixel(3, 3), HeatmapColors::sequential().back());
        QCOMPARE(b.pixel(0, 3), HeatmapColors::sequential().front());
        QCOMPARE(d.pixel(3, 3), HeatmapColors::diverging().back());  // red: more attention in loop 2
        QCOMPARE(d.pixel(0, 3), HeatmapColors::diverging().front()); // blue: less
        QCOMPARE(d.pixel(1, 3), HeatmapColors::divergingColor(0.0)); // unchanged
        QCOMPARE(d.pixel(0, 0), HeatmapColors::divergingColor(0.0)); // both attend to key 0 at position 0
        QCOMPARE(view.differenceMatrix()->at(3, 3), 1.0f);
        QVERIFY(!view.statusText().contains("PARTIAL"));

        // Zoom on one map moves all three; a click selects the row.
        view.laterCanvas()->zoomBy(2.0);
        QCOMPARE(view.firstCanvas()->zoom(), view.laterCanvas()->zoom());
        QCOMPARE(view.differenceCanvas()->offset(), view.laterCanvas()->offset());
        QTest::mouseClick(view.differenceCanvas(), Qt::LeftButton, {},
                          view.differenceCanvas()->cellRect(2, 0).center().toPoint());
        QCOMPARE(selection.position(), 2);
        QCOMPARE(view.firstCanvas()->highlightRow(), 2);

        // The top-1-only head is labelled partial; keys step heads and layers.
        view.setLayerHead(0, 1);
        QTRY_VERIFY(!view.isBusy() && view.statusText().contains("PARTIAL"));
        QTest::keyClick(&view, Qt::Key_BracketRight);
        QCOMPARE(view.layer(), 1);
        QTest::keyClick(&view, Qt::Key_Period);
        QCOMPARE(view.head(), -1);
        QTest::keyClick(&view, Qt::Key_Comma);
        QCOMPARE(view.head(), 1);
    }
};

QTEST_MAIN(TestLoopComparison)
#include "tst_loopcomparison.moc"
