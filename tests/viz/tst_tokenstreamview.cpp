// TokenStreamView drawn offscreen: chips carry the model's colours at known places, clicking selects.
#include "viz/RunDocument.h"
#include "viz/StepSelection.h"
#include "viz/TokenColors.h"
#include "viz/TokenStreamModel.h"
#include "viz/TokenStreamView.h"

#include <QImage>
#include <QtTest>

using namespace sage;

class TestTokenStreamView : public QObject
{
    Q_OBJECT

private slots:
    void chipsAreColouredAndClickable()
    {
        RunDocument doc;
        TokenStreamModel model;
        model.setDocument(&doc);
        StepSelection selection;
        TokenStreamView view;
        view.setModel(&model);
        view.setSelection(&selection);
        view.resize(400, 200);
        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));

        doc.beginRun({{1, "<s>"}, {2, "def"}}, 50);
        QList<GeneratedStep> steps;
        for (int i = 0; i < 3; ++i) {
            GeneratedStep s;
            s.token = 10 + i;
            s.text = QString("tok%1").arg(i);
            s.probability = i == 0 ? 0.95f : 0.05f;
            steps.append(s);
        }
        doc.appendSteps(steps);

        const QImage image = view.viewport()->grab().toImage();
        auto colourAtChip = [&](int row) {
            const QRect r = view.chipRect(row);
            return image.pixelColor(r.left() + 2, r.center().y()); // left padding: no text there
        };
        auto near = [](QColor a, QColor b) {
            return std::abs(a.red() - b.red()) <= 3 && std::abs(a.green() - b.green()) <= 3 &&
                   std::abs(a.blue() - b.blue()) <= 3;
        };
        const bool dark = view.palette().color(QPalette::Base).lightnessF() < 0.5;
        QVERIFY(near(colourAtChip(2), TokenColors::chipColor(0.95, dark)));
        QVERIFY(near(colourAtChip(3), TokenColors::chipColor(0.05, dark)));
        QVERIFY(near(colourAtChip(0), TokenColors::promptChipColor(dark)));
        // Chips flow left to right on one line.
        QVERIFY(view.chipRect(1).left() > view.chipRect(0).right());
        QCOMPARE(view.chipRect(1).top(), view.chipRect(0).top());

        QTest::mouseClick(view.viewport(), Qt::LeftButton, {}, view.chipRect(3).center());
        QCOMPARE(selection.position(), 3);
        QTest::keyClick(&view, Qt::Key_Left);
        QCOMPARE(selection.position(), 2);
        QCOMPARE(view.rowAt(view.chipRect(4).center()), 4);
        QCOMPARE(view.rowAt(QPoint(390, 190)), -1);
    }

    void newlineTokensEndTheLine()
    {
        RunDocument doc;
        TokenStreamModel model;
        model.setDocument(&doc);
        TokenStreamView view;
        view.setModel(&model);
        view.resize(600, 200);
        doc.beginRun({{1, "a"}, {2, ":\\n"}, {3, "b"}}, 10);
        QVERIFY(view.chipRect(2).top() > view.chipRect(1).bottom());
        QCOMPARE(view.chipRect(2).left(), view.chipRect(0).left());
    }
};

QTEST_MAIN(TestTokenStreamView)
#include "tst_tokenstreamview.moc"
