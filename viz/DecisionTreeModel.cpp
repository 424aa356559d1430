#include "viz/DecisionTreeModel.h"

#include <QColor>
#include <QFont>

namespace sage {

DecisionTreeModel::DecisionTreeModel(QObject* parent) : QAbstractItemModel(parent)
{
    m_children.resize(1);
}

QString DecisionTreeModel::displayToken(const std::string& text)
{
    QString s = QString::fromStdString(text);
    s.replace('\\', "\\\\").replace('\n', "\\n").replace('\t', "\\t").replace('\r', "\\r");
    return QStringLiteral("\u201c%1\u201d").arg(s);
}

void DecisionTreeModel::setReport(std::shared_ptr<const IrReport> report)
{
    beginResetModel();
    m_report = std::move(report);
    const int64_t n = m_report ? int64_t(m_report->decisionPoints.size()) : 0;
    m_parent.assign(size_t(n), kRoot);
    m_row.assign(size_t(n), 0);
    m_children.assign(size_t(n + 1), {});
    bool valid = true;
    for (int64_t i = 0; i < n; ++i) {
        const int64_t p = m_report->decisionPoints[size_t(i)].parent;
        if (p >= i || p < -1) valid = false; // parents must precede children (docs/ir.md)
    }
    for (int64_t i = 0; i < n; ++i) {
        const int64_t p = valid ? m_report->decisionPoints[size_t(i)].parent : kRoot;
        m_parent[size_t(i)] = p;
        auto& siblings = m_children[size_t(p + 1)];
        m_row[size_t(i)] = int64_t(siblings.size());
        siblings.push_back(i);
    }
    endResetModel();
}

const std::vector<int64_t>& DecisionTreeModel::childrenOf(int64_t node) const
{
    return m_children[size_t(node + 1)];
}

QModelIndex DecisionTreeModel::indexForId(int64_t id) const
{
    if (id < 0 || id >= int64_t(m_parent.size())) return {};
    return createIndex(int(m_row[size_t(id)]), 0, quintptr(id));
}

const IrDecisionPoint* DecisionTreeModel::point(const QModelIndex& index) const
{
    if (!index.isValid() || !m_report) return nullptr;
    const auto id = int64_t(index.internalId());
    if (id < 0 || id >= int64_t(m_report->decisionPoints.size())) return nullptr;
    return &m_report->decisionPoints[size_t(id)];
}

QModelIndex DecisionTreeModel::index(int row, int column, const QModelIndex& parent) const
{
    if (row < 0 || column < 0 || column >= ColumnCount) return {};
    if (parent.isValid() && parent.column() != 0) return {};
    const int64_t node = parent.isValid() ? int64_t(parent.internalId()) : kRoot;
    const auto& kids = childrenOf(node);
    if (row >= int(kids.size())) return {};
    return createIndex(row, column, quintptr(kids[size_t(row)]));
}

QModelIndex DecisionTreeModel::parent(const QModelIndex& child) const
{
    if (!child.isValid()) return {};
    const auto id = int64_t(child.internalId());
    const int64_t p = m_parent[size_t(id)];
    if (p == kRoot) return {};
    return createIndex(int(m_row[size_t(p)]), 0, quintptr(p));
}

int DecisionTreeModel::rowCount(const QModelIndex& parent) const
{
    if (parent.isValid() && parent.column() != 0) return 0;
    const int64_t node = parent.isValid() ? int64_t(parent.internalId()) : kRoot;
    return int(childrenOf(node).size());
}

int DecisionTreeModel::columnCount(const QModelIndex&) const
{
    return ColumnCount;
}

QVariant DecisionTreeModel::data(const QModelIndex& index, int role) const
{
    const IrDecisionPoint* d = point(index);
    if (!d) return {};
    switch (role) {
    case Qt::DisplayRole:
        switch (index.column()) {
        case TokenColumn: return displayToken(d->text);
        case ProbabilityColumn: return QString::number(d->probability, 'f', 2);
        case AlternativesColumn: {
            QStringList alts;
            for (size_t i = 0; i < d->alternatives.size() && i < 3; ++i)
                alts << QStringLiteral("%1 %2")
                            .arg(displayToken(d->alternatives[i].text))
                            .arg(d->alternatives[i].probability, 0, 'f', 2);
            return alts.join(QStringLiteral(", "));
        }
        case ScoreColumn: return QString::number(d->score, 'f', 3);
        case PositionColumn: return qlonglong(d->position);
        }
        return {};
    case Qt::ToolTipRole: return QString::fromStdString(d->explanation);
    case Qt::TextAlignmentRole:
        if (index.column() == ProbabilityColumn || index.column() == ScoreColumn || index.column() == PositionColumn)
            return QVariant(Qt::AlignRight | Qt::AlignVCenter);
        return {};
    case Qt::FontRole:
        if (index.column() == TokenColumn) {
            QFont f(QStringLiteral("monospace"));
            f.setStyleHint(QFont::Monospace);
            f.setBold(true);
            return f;
        }
        return {};
    case IdRole: return qlonglong(d->id);
    case PositionRole: return qlonglong(d->position);
    default: return {};
    }
}

QVariant DecisionTreeModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
    switch (section) {
    case TokenColumn: return tr("Chosen");
    case ProbabilityColumn: return tr("p");
    case AlternativesColumn: return tr("Alternatives");
    case ScoreColumn: return tr("Score");
    case PositionColumn: return tr("Position");
    }
    return {};
}

} // namespace sage
