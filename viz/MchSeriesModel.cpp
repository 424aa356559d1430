#include "viz/MchSeriesModel.h"

#include "engine/capture/Trace.h"
#include "viz/TraceFeed.h"

#include <cmath>
#include <limits>

namespace sage {

MchSeriesModel::MchSeriesModel(Quantity quantity, QObject* parent) : TraceTableModel(parent), m_quantity(quantity) {}

void MchSeriesModel::setLoopLayer(int loop, int layer)
{
    if (loop == m_loop && layer == m_layer) return;
    m_loop = loop;
    m_layer = layer;
    // Same shape, other values: the mappers rebuild their series from dataChanged.
    if (m_rows > 0 && m_heads > 0) emit dataChanged(index(0, 1), index(m_rows - 1, m_heads));
}

void MchSeriesModel::resetState()
{
    m_rows = 0;
    m_heads = hasFeedData() ? int(feed()->info().heads) : 0;
}

void MchSeriesModel::appendSteps(qint64 first, qint64 last)
{
    if (last <= first || first != m_rows) return;
    beginInsertRows({}, int(first), int(last) - 1);
    m_rows = int(last);
    endInsertRows();
}

double MchSeriesModel::value(int row, int head) const
{
    constexpr double nan = std::numeric_limits<double>::quiet_NaN();
    if (row < 0 || row >= m_rows || head < 0 || head >= m_heads) return nan;
    const LayerRecord* r = feed()->step(row).layer(m_loop, m_layer);
    if (!r) return nan;
    const std::vector<float>& v = m_quantity == Quantity::Gate ? r->gate : r->divergence;
    return size_t(head) < v.size() ? double(v[size_t(head)]) : nan;
}

int MchSeriesModel::rowCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : m_rows;
}

int MchSeriesModel::columnCount(const QModelIndex& parent) const
{
    return parent.isValid() || m_heads == 0 ? 0 : 1 + m_heads;
}

QVariant MchSeriesModel::data(const QModelIndex& index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid)) return {};
    if (index.column() == 0) {
        if (role == Qt::DisplayRole || role == Qt::EditRole) return double(feed()->step(index.row()).position);
        if (role == HasValueRole) return true;
        return {};
    }
    const double v = value(index.row(), index.column() - 1);
    switch (role) {
    case Qt::DisplayRole:
    case Qt::EditRole: return std::isfinite(v) ? v : 0.0;
    case HasValueRole: return std::isfinite(v);
    case Qt::ToolTipRole:
        return std::isfinite(v) ? tr("position %1, head %2: %3")
                                      .arg(feed()->step(index.row()).position)
                                      .arg(index.column() - 1)
                                      .arg(v, 0, 'f', 4)
                                : tr("not captured");
    default: return {};
    }
}

QVariant MchSeriesModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (role != Qt::DisplayRole || section < 0) return {};
    if (orientation == Qt::Horizontal) {
        if (section >= columnCount()) return {};
        return section == 0 ? tr("Position") : tr("h%1").arg(section - 1);
    }
    return section < m_rows ? QVariant(qint64(feed()->step(section).position)) : QVariant();
}

} // namespace sage
