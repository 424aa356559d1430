#include "viz/DecisionPointPanel.h"

#include "viz/DecisionTreeModel.h"
#include "viz/StepSelection.h"

#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QSplitter>
#include <QTableWidget>
#include <QTextBrowser>
#include <QTreeView>
#include <QVBoxLayout>

namespace sage {

namespace {

QString esc(const std::string& s)
{
    return DecisionTreeModel::displayToken(s).toHtmlEscaped();
}

QString pct(double v)
{
    return QString::number(100.0 * v, 'f', 0) + QLatin1Char('%');
}

} // namespace

DecisionPointPanel::DecisionPointPanel(QWidget* parent) : QWidget(parent)
{
    m_model = new DecisionTreeModel(this);
    m_tree = new QTreeView(this);
    m_tree->setModel(m_model);
    m_tree->setObjectName(QStringLiteral("decisionTree"));
    m_tree->setUniformRowHeights(true);
    m_tree->setAllColumnsShowFocus(true);
    m_tree->setSelectionMode(QAbstractItemView::SingleSelection);
    m_tree->header()->setStretchLastSection(false);
    m_tree->header()->setSectionResizeMode(DecisionTreeModel::AlternativesColumn, QHeaderView::Stretch);

    m_placeholder = new QLabel(tr("No explanation yet: generate, then run Explain (Ctrl+E)."), this);
    m_placeholder->setWordWrap(true);
    m_placeholder->setAlignment(Qt::AlignCenter);

    m_detail = new QTextBrowser(this);
    m_detail->setObjectName(QStringLiteral("decisionDetail"));
    m_detail->setOpenLinks(false);

    m_branches = new QTableWidget(0, 6, this);
    m_branches->setObjectName(QStringLiteral("branchTable"));
    m_branches->setHorizontalHeaderLabels(
        {tr("Forced"), tr("p"), tr("Branch continuation"), tr("Original continuation"), tr("Rejoins"), tr("Changed")});
    m_branches->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_branches->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_branches->setSelectionMode(QAbstractItemView::SingleSelection);
    m_branches->verticalHeader()->hide();
    m_branches->horizontalHeader()->setSectionResizeMode(2, QHeaderView::Stretch);
    m_branches->horizontalHeader()->setSectionResizeMode(3, QHeaderView::Stretch);
    m_branches->setWordWrap(true);

    m_branchButton = new QPushButton(tr("&Branch here"), this);
    m_branchButton->setToolTip(tr("Regenerate from this decision point with the selected alternative forced"));
    m_branchButton->setEnabled(false);
    connect(m_branchButton, &QPushButton::clicked, this, [this] {
        if (!m_model->report() || m_currentId < 0) return;
        const int32_t token = branchToken();
        if (token < 0) return;
        emit branchRequested(qint64(m_model->report()->decisionPoints[size_t(m_currentId)].position), token);
    });

    auto* bottom = new QWidget(this);
    auto* bl = new QVBoxLayout(bottom);
    bl->setContentsMargins(0, 0, 0, 0);
    bl->addWidget(m_detail, 3);
    bl->addWidget(m_branches, 2);
    bl->addWidget(m_branchButton, 0, Qt::AlignRight);

    auto* split = new QSplitter(Qt::Vertical, this);
    split->addWidget(m_tree);
    split->addWidget(bottom);
    split->setStretchFactor(0, 1);
    split->setStretchFactor(1, 2);

    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(m_placeholder);
    layout->addWidget(split, 1);

    connect(m_tree->selectionModel(), &QItemSelectionModel::currentRowChanged, this,
            [this](const QModelIndex& current) {
                const IrDecisionPoint* d = m_model->point(current);
                showPoint(d ? d->id : -1);
                if (d && m_selection && !m_syncing) {
                    m_syncing = true;
                    m_selection->setPosition(int(d->position));
                    m_syncing = false;
                }
            });
    setReport(nullptr);
}

void DecisionPointPanel::setSelection(StepSelection* selection)
{
    if (m_selection) disconnect(m_selection, nullptr, this, nullptr);
    m_selection = selection;
    if (m_selection) connect(m_selection, &StepSelection::positionChanged, this, &DecisionPointPanel::followSelection);
}

void DecisionPointPanel::setPlaceholder(const QString& text)
{
    m_placeholder->setText(text);
}

std::shared_ptr<const IrReport> DecisionPointPanel::report() const
{
    return m_model->report();
}

void DecisionPointPanel::setReport(std::shared_ptr<const IrReport> report)
{
    m_model->setReport(std::move(report));
    m_tree->expandAll();
    for (int c = 0; c < DecisionTreeModel::ColumnCount; ++c)
        if (c != DecisionTreeModel::AlternativesColumn) m_tree->resizeColumnToContents(c);
    const bool any = m_model->report() && !m_model->report()->decisionPoints.empty();
    if (m_model->report() && !any)
        m_placeholder->setText(tr("No decision points: no generated step was both contested and influential "
                                  "(the thresholds are in docs/ir.md)."));
    m_placeholder->setVisible(!any);
    m_currentId = -1;
    showPoint(-1);
    if (any) selectPoint(0);
}

void DecisionPointPanel::selectPoint(int64_t id)
{
    const QModelIndex idx = m_model->indexForId(id);
    if (!idx.isValid()) return;
    m_tree->setCurrentIndex(idx);
    m_tree->scrollTo(idx);
}

void DecisionPointPanel::followSelection(int position)
{
    if (m_syncing || !m_model->report()) return;
    for (const IrDecisionPoint& d : m_model->report()->decisionPoints)
        if (d.position == position) {
            m_syncing = true;
            selectPoint(d.id);
            m_syncing = false;
            return;
        }
}

int32_t DecisionPointPanel::branchToken() const
{
    if (!m_model->report() || m_currentId < 0) return -1;
    const IrDecisionPoint& d = m_model->report()->decisionPoints[size_t(m_currentId)];
    const int row = m_branches->currentRow();
    if (row >= 0 && row < int(d.branches.size())) return d.branches[size_t(row)].forcedToken;
    return d.alternatives.empty() ? -1 : d.alternatives.front().token;
}

void DecisionPointPanel::showPoint(int64_t id)
{
    const auto report = m_model->report();
    m_currentId = (report && id >= 0 && id < int64_t(report->decisionPoints.size())) ? id : -1;
    m_branches->setRowCount(0);
    if (m_currentId < 0) {
        m_detail->clear();
        m_branchButton->setEnabled(false);
        return;
    }
    const IrDecisionPoint& d = report->decisionPoints[size_t(m_currentId)];
    m_detail->setHtml(detailHtml(*report, d));
    m_branches->setRowCount(int(d.branches.size()));
    for (size_t i = 0; i < d.branches.size(); ++i) {
        const IrBranch& b = d.branches[i];
        const int r = int(i);
        m_branches->setItem(r, 0, new QTableWidgetItem(DecisionTreeModel::displayToken(b.forcedText)));
        m_branches->setItem(r, 1, new QTableWidgetItem(QString::number(b.forcedProbability, 'f', 2)));
        m_branches->setItem(r, 2, new QTableWidgetItem(QString::fromStdString(b.text)));
        m_branches->setItem(r, 3, new QTableWidgetItem(QString::fromStdString(b.originalText)));
        m_branches->setItem(r, 4,
                            new QTableWidgetItem(b.rejoinsAt >= 0 ? tr("after %1 tokens").arg(b.rejoinsAt) : tr("no")));
        m_branches->setItem(r, 5, new QTableWidgetItem(pct(b.changed)));
        for (int c : {2, 3}) {
            QFont f(QStringLiteral("monospace"));
            f.setStyleHint(QFont::Monospace);
            m_branches->item(r, c)->setFont(f);
        }
    }
    m_branches->resizeRowsToContents();
    m_branchButton->setEnabled(!d.alternatives.empty() || !d.branches.empty());
}

QString DecisionPointPanel::detailHtml(const IrReport& report, const IrDecisionPoint& d)
{
    QString h;
    h += QStringLiteral("<p><b>%1</b> at position %2 (p %3, entropy %4 nats, margin %5)</p>")
             .arg(esc(d.text))
             .arg(d.position)
             .arg(d.probability, 0, 'f', 2)
             .arg(d.entropy, 0, 'f', 2)
             .arg(d.margin, 0, 'f', 2);
    h += QStringLiteral("<p>%1</p>").arg(QString::fromStdString(d.explanation).toHtmlEscaped());
    if (!d.alternatives.empty()) {
        h += QStringLiteral("<p><b>Alternatives:</b> ");
        QStringList a;
        for (const IrAlternative& alt : d.alternatives)
            a << QStringLiteral("%1 %2").arg(esc(alt.text)).arg(alt.probability, 0, 'f', 2);
        h += a.join(QStringLiteral(", ")) + QStringLiteral("</p>");
    }
    const IrEvidence& e = d.evidence;
    if (!e.sources.empty()) {
        h += QStringLiteral("<p><b>Rests on:</b></p><table cellspacing=2>");
        float top = e.sources.front().relevance > 0 ? e.sources.front().relevance : 1.0f;
        for (const IrSource& s : e.sources) {
            const int w = std::max(1, int(120.0f * s.relevance / top));
            h += QStringLiteral("<tr><td>%1</td><td align=right>%2</td><td>%3</td>"
                                "<td><table cellspacing=0 cellpadding=0><tr><td bgcolor='#d9822b' width=%4 "
                                "height=8></td></tr></table></td></tr>")
                     .arg(esc(s.text))
                     .arg(s.position)
                     .arg(s.relevance, 0, 'f', 3)
                     .arg(w);
        }
        h += QStringLiteral("</table>");
    }
    if (!e.loopPredictions.empty()) {
        h += QStringLiteral("<p><b>Prediction after each loop:</b><br>");
        for (const IrLoopPrediction& lp : e.loopPredictions) {
            QStringList t;
            for (const IrAlternative& a : lp.top)
                t << QStringLiteral("%1 %2").arg(esc(a.text)).arg(a.probability, 0, 'f', 2);
            h += QStringLiteral("loop %1: %2<br>").arg(lp.loop).arg(t.join(QStringLiteral(", ")));
        }
        h += QStringLiteral("</p>");
    }
    if (!e.loopShares.empty()) {
        QStringList t;
        for (size_t l = 0; l < e.loopShares.size(); ++l)
            t << QStringLiteral("loop %1 %2").arg(l + 1).arg(pct(e.loopShares[l]));
        h += QStringLiteral("<p><b>Carried by:</b> %1").arg(t.join(QStringLiteral(", ")));
        if (report.loops > 1)
            h += QStringLiteral("; global stream %1, local stream %2").arg(pct(e.globalShare), pct(e.localShare));
        h += QStringLiteral("</p>");
    }
    if (!e.heads.empty()) {
        QStringList t;
        for (const IrCarrier& c : e.heads)
            t << QStringLiteral("loop %1 layer %2 head %3 %4 (%5)")
                     .arg(c.loop)
                     .arg(c.layer)
                     .arg(c.head)
                     .arg(QString::fromStdString(c.stream))
                     .arg(pct(c.share));
        h += QStringLiteral("<p><b>Heads:</b> %1</p>").arg(t.join(QStringLiteral("; ")));
    }
    if (!e.experts.empty()) {
        QStringList t;
        for (const IrExpertShare& x : e.experts)
            t << QStringLiteral("loop %1 layer %2 expert %3 (%4)")
                     .arg(x.loop)
                     .arg(x.layer)
                     .arg(x.expert)
                     .arg(pct(x.share));
        h += QStringLiteral("<p><b>Experts:</b> %1</p>").arg(t.join(QStringLiteral("; ")));
    }
    if (d.parent >= 0 && d.parent < int64_t(report.decisionPoints.size())) {
        const IrDecisionPoint& p = report.decisionPoints[size_t(d.parent)];
        h += QStringLiteral("<p>Depends most on the decision %1 at position %2 (lift %3).</p>")
                 .arg(esc(p.text))
                 .arg(p.position)
                 .arg(d.parentLift, 0, 'f', 1);
    }
    return h;
}

} // namespace sage
