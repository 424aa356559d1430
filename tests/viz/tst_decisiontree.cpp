// The decision-point tree: the model's shape under QAbstractItemModelTester, the details of a selected point,
// "Branch here", and selection following in both directions, on a hand-built IR report.
#include "viz/DecisionPointPanel.h"
#include "viz/DecisionTreeModel.h"
#include "viz/StepSelection.h"

#include <QAbstractItemModelTester>
#include <QPushButton>
#include <QSignalSpy>
#include <QTableWidget>
#include <QTextBrowser>
#include <QTreeView>
#include <QtTest>

using namespace sage;

namespace {

// Four decision points: 0 (root) -> 1 -> 3, and 2 (root). Point 1 has two branches.
std::shared_ptr<IrReport> makeReport()
{
    auto r = std::make_shared<IrReport>();
    r->loops = 2;
    r->layers = 4;
    r->heads = 8;
    r->promptLength = 3;
    for (int i = 0; i < 12; ++i) {
        IrToken t;
        t.id = 100 + i;
        t.text = "t" + std::to_string(i);
        t.generated = i >= 3;
        r->tokens.push_back(t);
    }
    const int64_t parents[4] = {-1, 0, -1, 1};
    const int64_t positions[4] = {4, 6, 7, 10};
    for (int i = 0; i < 4; ++i) {
        IrDecisionPoint d;
        d.id = i;
        d.position = positions[i];
        d.step = positions[i] - 3;
        d.token = 100 + int32_t(positions[i]);
        d.text = i == 1 ? "return" : "tok\n" + std::to_string(i);
        d.probability = 0.41f;
        d.entropy = 1.5f;
        d.margin = 0.08f;
        d.score = 0.5f - 0.1f * float(i);
        d.parent = parents[i];
        d.parentLift = parents[i] >= 0 ? 2.5f : 0.0f;
        d.alternatives = {{7, "if", 0.33f}, {8, "for", 0.12f}};
        d.explanation = "chose `return` (0.41) over `if` (0.33)";
        d.evidence.sources = {{2, 102, "def", 0.6f}, {1, 101, "fib", 0.2f}};
        d.evidence.loopShares = {0.3f, 0.7f};
        d.evidence.globalShare = 0.25f;
        d.evidence.localShare = 0.75f;
        d.evidence.heads = {{2, 3, 5, "local", 0.4f}};
        d.evidence.loopPredictions = {{1, {{7, "if", 0.5f}}}, {2, {{d.token, "return", 0.41f}}}};
        if (i == 1) {
            IrBranch b1;
            b1.forcedToken = 7;
            b1.forcedText = "if";
            b1.forcedProbability = 0.33f;
            b1.text = "if n < 2:";
            b1.originalText = "return n";
            b1.rejoinsAt = -1;
            b1.changed = 1.0f;
            IrBranch b2 = b1;
            b2.forcedToken = 8;
            b2.forcedText = "for";
            b2.text = "for i in";
            b2.rejoinsAt = 3;
            b2.changed = 0.5f;
            d.branches = {b1, b2};
        }
        r->decisionPoints.push_back(d);
    }
    return r;
}

} // namespace

class TestDecisionTree : public QObject
{
    Q_OBJECT

private slots:
    void modelShape()
    {
        DecisionTreeModel model;
        QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
        QCOMPARE(model.rowCount(), 0);
        model.setReport(makeReport());
        QCOMPARE(model.rowCount(), 2); // roots 0 and 2
        const QModelIndex p0 = model.index(0, 0), p2 = model.index(1, 0);
        QCOMPARE(p0.data(DecisionTreeModel::IdRole).toLongLong(), 0);
        QCOMPARE(p2.data(DecisionTreeModel::IdRole).toLongLong(), 2);
        QCOMPARE(model.rowCount(p0), 1);
        QCOMPARE(model.rowCount(p2), 0);
        const QModelIndex p1 = model.index(0, 0, p0);
        QCOMPARE(p1.data(DecisionTreeModel::IdRole).toLongLong(), 1);
        QCOMPARE(model.parent(p1), p0);
        const QModelIndex p3 = model.index(0, 0, p1);
        QCOMPARE(p3.data(DecisionTreeModel::PositionRole).toLongLong(), 10);
        QCOMPARE(model.indexForId(3), p3);
        // Display: quoted, escaped token; probability; alternatives; position.
        QCOMPARE(p1.data().toString(), QString::fromUtf8("\u201creturn\u201d"));
        QCOMPARE(p0.data().toString(), QString::fromUtf8("\u201ctok\\n0\u201d"));
        QCOMPARE(model.index(0, DecisionTreeModel::ProbabilityColumn, p0).data().toString(), QString("0.41"));
        QCOMPARE(model.index(0, DecisionTreeModel::AlternativesColumn, p0).data().toString(),
                 QString::fromUtf8("\u201cif\u201d 0.33, \u201cfor\u201d 0.12"));
        QCOMPARE(model.index(0, DecisionTreeModel::PositionColumn, p0).data().toLongLong(), 6);
        QCOMPARE(p1.data(Qt::ToolTipRole).toString(), QString("chose `return` (0.41) over `if` (0.33)"));
        // Reset to another report and to none.
        model.setReport(nullptr);
        QCOMPARE(model.rowCount(), 0);
        QVERIFY(!model.indexForId(0).isValid());
    }

    // A report whose parent links do not precede their children (a corrupt file) is shown flat, not looped.
    void badParentsShownFlat()
    {
        auto r = makeReport();
        r->decisionPoints[0].parent = 3;
        DecisionTreeModel model;
        QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
        model.setReport(r);
        QCOMPARE(model.rowCount(), 4);
        for (int i = 0; i < 4; ++i) QCOMPARE(model.rowCount(model.index(i, 0)), 0);
    }

    void panelDetailsBranchAndSelection()
    {
        DecisionPointPanel panel;
        StepSelection selection;
        panel.setSelection(&selection);
        panel.resize(700, 600);
        panel.show();
        QVERIFY(QTest::qWaitForWindowExposed(&panel));
        QVERIFY(!panel.branchButton()->isEnabled());
        panel.setReport(makeReport());
        QCOMPARE(panel.currentId(), int64_t(0)); // the first point is selected
        QCOMPARE(selection.position(), 4);

        // Selecting position 6 elsewhere selects decision point 1 and shows its branches beside the original.
        selection.setPosition(6);
        QCOMPARE(panel.currentId(), int64_t(1));
        QCOMPARE(panel.branchTable()->rowCount(), 2);
        QCOMPARE(panel.branchTable()->item(0, 2)->text(), QString("if n < 2:"));
        QCOMPARE(panel.branchTable()->item(0, 3)->text(), QString("return n"));
        QCOMPARE(panel.branchTable()->item(0, 4)->text(), QString("no"));
        QCOMPARE(panel.branchTable()->item(1, 4)->text(), QString("after 3 tokens"));
        QCOMPARE(panel.branchTable()->item(1, 5)->text(), QString("50%"));
        const QString detail = panel.detailView()->toPlainText();
        QVERIFY2(detail.contains("chose `return` (0.41) over `if` (0.33)"), qPrintable(detail));
        QVERIFY(detail.contains("loop 2 70%"));
        QVERIFY(detail.contains("local stream 75%"));
        QVERIFY(detail.contains("loop 2 layer 3 head 5 local (40%)"));
        QVERIFY(detail.contains("Depends most on the decision"));

        // Branch here: the first runner-up by default, the selected branch's token when one is selected.
        QSignalSpy spy(&panel, &DecisionPointPanel::branchRequested);
        QVERIFY(panel.branchButton()->isEnabled());
        QTest::mouseClick(panel.branchButton(), Qt::LeftButton);
        QCOMPARE(spy.count(), 1);
        QCOMPARE(spy.at(0).at(0).toLongLong(), 6);
        QCOMPARE(spy.at(0).at(1).toInt(), 7);
        panel.branchTable()->selectRow(1);
        QTest::mouseClick(panel.branchButton(), Qt::LeftButton);
        QCOMPARE(spy.count(), 2);
        QCOMPARE(spy.at(1).at(1).toInt(), 8);

        // Keyboard: Down in the tree moves to the next node (point 3, the child of 1) and the selection follows.
        panel.treeView()->setFocus();
        QTest::keyClick(panel.treeView(), Qt::Key_Down);
        QCOMPARE(panel.currentId(), int64_t(3));
        QCOMPARE(selection.position(), 10);

        // A position that is no decision point leaves the panel as it is.
        selection.setPosition(5);
        QCOMPARE(panel.currentId(), int64_t(3));

        // The tree is drawn: the selected row's rectangle is visible and painted differently from the empty
        // area below the last row.
        const QRect rect = panel.treeView()->visualRect(panel.model()->indexForId(3));
        QVERIFY(!rect.isEmpty());
        const QImage img = panel.treeView()->viewport()->grab().toImage();
        const QColor selected = img.pixelColor(rect.right() - 2, rect.center().y());
        const QColor empty = img.pixelColor(rect.right() - 2, img.height() - 3);
        QVERIFY2(selected != empty, qPrintable(selected.name() + " vs " + empty.name()));
    }
};

QTEST_MAIN(TestDecisionTree)
#include "tst_decisiontree.moc"
