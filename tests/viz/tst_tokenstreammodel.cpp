// TokenStreamModel over a RunDocument: structure under QAbstractItemModelTester while a run streams in,
// every data role, colour modes and the alternatives tooltip.
#include "viz/RunDocument.h"
#include "viz/StepSelection.h"
#include "viz/TokenColors.h"
#include "viz/TokenStreamModel.h"

#include <QAbstractItemModelTester>
#include <QColor>
#include <QSignalSpy>
#include <QtTest>

#include <cmath>

using namespace sage;

namespace {

QList<PromptToken> samplePrompt()
{
    return {{1, "<s>"}, {17, "def"}, {42, " fib"}};
}

GeneratedStep step(int32_t token, const QString& text, float p, float entropy, QList<TokenAlternative> alts = {})
{
    GeneratedStep s;
    s.token = token;
    s.text = text;
    s.probability = p;
    s.entropy = entropy;
    s.margin = alts.size() > 1 ? alts[0].probability - alts[1].probability : p;
    s.alternatives = std::move(alts);
    return s;
}

} // namespace

class TestTokenStreamModel : public QObject
{
    Q_OBJECT

private slots:
    void streamsRowsUnderTheModelTester()
    {
        RunDocument doc;
        TokenStreamModel model;
        QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
        model.setDocument(&doc);
        QCOMPARE(model.rowCount(), 0);

        QSignalSpy reset(&model, &QAbstractItemModel::modelReset);
        QSignalSpy inserted(&model, &QAbstractItemModel::rowsInserted);
        doc.beginRun(samplePrompt(), 100);
        QCOMPARE(reset.count(), 1);
        QCOMPARE(model.rowCount(), 3);

        doc.appendSteps({step(7, "(", 0.9f, 0.3f), step(8, "n", 0.5f, 1.2f)});
        QCOMPARE(model.rowCount(), 5);
        QCOMPARE(inserted.count(), 1);
        QCOMPARE(inserted.at(0).at(1).toInt(), 3);
        QCOMPARE(inserted.at(0).at(2).toInt(), 4);

        doc.appendSteps({step(9, "):", 0.1f, 3.0f)});
        QCOMPARE(model.rowCount(), 6);
        QCOMPARE(inserted.count(), 2);
        QCOMPARE(inserted.at(1).at(1).toInt(), 5);
        QCOMPARE(inserted.at(1).at(2).toInt(), 5);

        doc.appendSteps({}); // nothing to insert
        QCOMPARE(inserted.count(), 2);

        doc.finishRun("max_tokens", "(n):");
        QCOMPARE(model.rowCount(), 6);
        QCOMPARE(doc.stopReason(), QStringLiteral("max_tokens"));

        doc.beginRun({{5, "x"}}, 100); // a new run replaces the old one
        QCOMPARE(model.rowCount(), 1);
        QCOMPARE(reset.count(), 2);
        doc.clear();
        QCOMPARE(model.rowCount(), 0);
    }

    void dataRolesDescribePromptAndSteps()
    {
        RunDocument doc;
        TokenStreamModel model;
        QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
        model.setDocument(&doc);
        doc.beginRun(samplePrompt(), 100);
        doc.appendSteps({step(7, "(", 0.75f, 0.5f, {{7, 0.75f, "("}, {9, 0.2f, ":"}, {3, 0.05f, "<|im_start|>"}})});

        const QModelIndex prompt = model.index(1);
        QCOMPARE(prompt.data(Qt::DisplayRole).toString(), QStringLiteral("def"));
        QCOMPARE(prompt.data(TokenStreamModel::TokenIdRole).toInt(), 17);
        QCOMPARE(prompt.data(TokenStreamModel::IsPromptRole).toBool(), true);
        QCOMPARE(prompt.data(TokenStreamModel::StepRole).toInt(), -1);
        QVERIFY(std::isnan(prompt.data(TokenStreamModel::ProbabilityRole).toDouble()));
        QVERIFY(std::isnan(prompt.data(TokenStreamModel::ScoreRole).toDouble()));
        QCOMPARE(prompt.data(Qt::BackgroundRole).value<QColor>(), TokenColors::promptChipColor(false));
        QVERIFY(prompt.data(TokenStreamModel::AlternativesRole).toList().isEmpty());
        QVERIFY(prompt.data(Qt::ToolTipRole).toString().contains("prompt token, position 1"));

        const QModelIndex gen = model.index(3);
        QCOMPARE(gen.data(Qt::DisplayRole).toString(), QStringLiteral("("));
        QCOMPARE(gen.data(TokenStreamModel::TokenIdRole).toInt(), 7);
        QCOMPARE(gen.data(TokenStreamModel::IsPromptRole).toBool(), false);
        QCOMPARE(gen.data(TokenStreamModel::StepRole).toInt(), 0);
        QCOMPARE(gen.data(TokenStreamModel::ProbabilityRole).toDouble(), 0.75);
        QCOMPARE(gen.data(TokenStreamModel::EntropyRole).toDouble(), 0.5);
        QVERIFY(std::fabs(gen.data(TokenStreamModel::MarginRole).toDouble() - 0.55) < 1e-6);
        QCOMPARE(gen.data(TokenStreamModel::ScoreRole).toDouble(), 0.75);
        QCOMPARE(gen.data(Qt::BackgroundRole).value<QColor>(), TokenColors::chipColor(0.75, false));

        const QVariantList alts = gen.data(TokenStreamModel::AlternativesRole).toList();
        QCOMPARE(alts.size(), 3);
        QCOMPARE(alts[1].toMap().value("token").toInt(), 9);
        QCOMPARE(alts[1].toMap().value("text").toString(), QStringLiteral(":"));
        QVERIFY(std::fabs(alts[1].toMap().value("probability").toDouble() - 0.2) < 1e-6);

        // The tooltip lists every alternative with its probability; special text is escaped.
        const QString tip = gen.data(Qt::ToolTipRole).toString();
        QVERIFY2(tip.contains("0.7500") && tip.contains("0.2000") && tip.contains("0.0500"), qPrintable(tip));
        QVERIFY2(tip.contains("&lt;|im_start|&gt;"), qPrintable(tip));
        QVERIFY(tip.contains("step 0 (position 3)"));

        QCOMPARE(model.roleNames().value(TokenStreamModel::AlternativesRole), QByteArray("alternatives"));
        QVERIFY(!model.index(4).isValid());
        QVERIFY(!model.data(model.index(0).sibling(7, 0)).isValid());
    }

    void colorModeSwitchesScoresAndNotifies()
    {
        RunDocument doc;
        TokenStreamModel model;
        QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
        model.setDocument(&doc);
        const int vocab = 100;
        doc.beginRun(samplePrompt(), vocab);
        const float h = float(0.25 * std::log(double(vocab)));
        doc.appendSteps({step(7, "(", 0.9f, h)});

        QSignalSpy changed(&model, &QAbstractItemModel::dataChanged);
        model.setColorMode(TokenColors::Mode::Entropy);
        QCOMPARE(changed.count(), 1);
        QCOMPARE(changed.at(0).at(0).value<QModelIndex>().row(), 0);
        QCOMPARE(changed.at(0).at(1).value<QModelIndex>().row(), 3);
        // Entropy score: 1 - H / log V.
        QVERIFY(std::fabs(model.index(3).data(TokenStreamModel::ScoreRole).toDouble() - 0.75) < 1e-6);
        model.setColorMode(TokenColors::Mode::Entropy); // unchanged: no signal
        QCOMPARE(changed.count(), 1);
        model.setColorMode(TokenColors::Mode::Probability);
        QVERIFY(std::fabs(model.index(3).data(TokenStreamModel::ScoreRole).toDouble() - 0.9) < 1e-6);
    }

    void colorsRampFromRedToGreen()
    {
        const QColor low = TokenColors::chipColor(0.0, false), high = TokenColors::chipColor(1.0, false);
        QVERIFY(low.red() > low.green());
        QVERIFY(high.green() > high.red());
        QCOMPARE(TokenColors::chipColor(std::nan(""), false), low);
        QCOMPARE(TokenColors::score(TokenColors::Mode::Probability, 1.7, 0, 10), 1.0);
        QCOMPARE(TokenColors::textColorOn(QColor(Qt::white)), QColor(Qt::black));
        QCOMPARE(TokenColors::textColorOn(TokenColors::chipColor(0.5, true)), QColor(Qt::white));
    }

    void selectionClampsAndNotifies()
    {
        StepSelection sel;
        QSignalSpy spy(&sel, &StepSelection::positionChanged);
        sel.setPosition(4);
        sel.setPosition(4);
        sel.setPosition(-7);
        QCOMPARE(spy.count(), 2);
        QCOMPARE(sel.position(), -1);
        QVERIFY(!sel.hasSelection());
    }
};

QTEST_MAIN(TestTokenStreamModel)
#include "tst_tokenstreammodel.moc"
