#include "viz/RoutingTableModel.h"

#include "engine/capture/Trace.h"
#include "viz/ExpertColors.h"
#include "viz/TraceFeed.h"

#include <QColor>

#include <algorithm>

namespace sage {

RoutingTableModel::RoutingTableModel(QObject* parent) : TraceTableModel(parent) {}

int RoutingTableModel::loopCount() const
{
    return hasFeedData() ? int(std::max<int64_t>(1, feed()->info().loops)) : 1;
}

void RoutingTableModel::setLoop(int loop)
{
    loop = std::clamp(loop, 1, loopCount());
    if (loop == m_loop) return;
    m_loop = loop;
    // Every cell changes but the shape does not: one dataChanged instead of a reset keeps the views' scroll.
    if (m_rows > 0 && m_layers > 0) emit dataChanged(index(0, 0), index(m_rows - 1, m_layers - 1));
}

void RoutingTableModel::resetState()
{
    m_rows = 0;
    m_layers = hasFeedData() ? int(feed()->info().layers) : 0;
    m_loop = std::clamp(m_loop, 1, loopCount());
}

void RoutingTableModel::appendSteps(qint64 first, qint64 last)
{
    if (last <= first || first != m_rows) return;
    beginInsertRows({}, int(first), int(last) - 1);
    m_rows = int(last);
    endInsertRows();
}

int RoutingTableModel::rowCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : m_rows;
}

int RoutingTableModel::columnCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : m_layers;
}

int RoutingTableModel::topExpert(int row, int layer) const
{
    if (row < 0 || row >= m_rows || layer < 0 || layer >= m_layers) return -1;
    const LayerRecord* r = feed()->step(row).layer(m_loop, layer);
    return r && !r->experts.empty() ? r->experts.front() : -1;
}

qint64 RoutingTableModel::positionOfRow(int row) const
{
    return row >= 0 && row < m_rows ? feed()->step(row).position : -1;
}

int RoutingTableModel::rowOfPosition(qint64 position) const
{
    if (!hasFeedData()) return -1;
    const qint64 row = position - feed()->origin();
    return row >= 0 && row < m_rows ? int(row) : -1;
}

QVariant RoutingTableModel::data(const QModelIndex& index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid)) return {};
    const StepRecord& step = feed()->step(index.row());
    if (role == PositionRole) return qint64(step.position);
    if (role == TokenRole) return int(step.token);
    const LayerRecord* r = step.layer(m_loop, index.column());
    const bool routed = r && !r->experts.empty();
    switch (role) {
    case Qt::DisplayRole: return routed ? QVariant(int(r->experts.front())) : QVariant();
    case Qt::BackgroundRole: return routed ? ExpertColors::color(r->experts.front()) : QVariant();
    case Qt::ToolTipRole: {
        if (!routed)
            return tr("position %1, layer %2, loop %3: no routing captured")
                .arg(step.position)
                .arg(index.column())
                .arg(m_loop);
        QStringList parts;
        for (size_t k = 0; k < r->experts.size(); ++k) {
            const float w = k < r->expertWeights.size() ? r->expertWeights[k] : 0.0f;
            parts << tr("E%1 (%2)").arg(r->experts[k]).arg(double(w), 0, 'f', 3);
        }
        return tr("position %1, layer %2, loop %3: %4")
            .arg(step.position)
            .arg(index.column())
            .arg(m_loop)
            .arg(parts.join(", "));
    }
    case ExpertsRole: {
        QVariantList out;
        if (r)
            for (int32_t e : r->experts) out << int(e);
        return out;
    }
    case WeightsRole: {
        QVariantList out;
        if (r)
            for (float w : r->expertWeights) out << double(w);
        return out;
    }
    default: return {};
    }
}

QVariant RoutingTableModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (role != Qt::DisplayRole || section < 0) return {};
    if (orientation == Qt::Horizontal) return section < m_layers ? QVariant(tr("L%1").arg(section)) : QVariant();
    return section < m_rows ? QVariant(qint64(feed()->step(section).position)) : QVariant();
}

} // namespace sage
