#include "viz/RoutingChangeModel.h"

#include "engine/capture/Trace.h"
#include "viz/TraceFeed.h"

#include <algorithm>

namespace sage {

namespace {
// The expert sets of two records differ (order does not matter: the weights may reorder equal sets).
bool setChanged(const LayerRecord& a, const LayerRecord& b)
{
    std::vector<int32_t> x = a.experts, y = b.experts;
    std::sort(x.begin(), x.end());
    std::sort(y.begin(), y.end());
    return x != y;
}
} // namespace

RoutingChangeModel::RoutingChangeModel(Axis axis, QObject* parent) : TraceTableModel(parent), m_axis(axis) {}

void RoutingChangeModel::setLoops(int fromLoop, int toLoop)
{
    if (fromLoop < 1 || toLoop <= fromLoop) return;
    if (fromLoop == m_from && toLoop == m_to) return;
    m_from = fromLoop;
    m_to = toLoop;
    rebuild();
}

bool RoutingChangeModel::comparable() const
{
    return hasFeedData() && feed()->info().experts > 0 && feed()->info().loops >= m_to;
}

void RoutingChangeModel::resetState()
{
    m_changed.clear();
    m_compared.clear();
    m_position.clear();
    if (m_axis == Axis::ByLayer && comparable()) {
        m_changed.assign(size_t(feed()->info().layers), 0);
        m_compared.assign(size_t(feed()->info().layers), 0);
    }
}

void RoutingChangeModel::appendSteps(qint64 first, qint64 last)
{
    if (!comparable() || last <= first) return;
    const int layers = int(feed()->info().layers);
    if (m_axis == Axis::ByLayer) {
        for (qint64 i = first; i < last; ++i) {
            const StepRecord& s = feed()->step(i);
            for (int l = 0; l < layers; ++l) {
                const LayerRecord* a = s.layer(m_from, l);
                const LayerRecord* b = s.layer(m_to, l);
                if (!a || !b || a->experts.empty() || b->experts.empty()) continue;
                ++m_compared[size_t(l)];
                if (setChanged(*a, *b)) ++m_changed[size_t(l)];
            }
        }
        if (layers > 0) emit dataChanged(index(0, 0), index(layers - 1, 0));
        return;
    }
    if (first != qint64(m_changed.size())) return;
    beginInsertRows({}, int(first), int(last) - 1);
    for (qint64 i = first; i < last; ++i) {
        const StepRecord& s = feed()->step(i);
        qint64 changed = 0, compared = 0;
        for (int l = 0; l < layers; ++l) {
            const LayerRecord* a = s.layer(m_from, l);
            const LayerRecord* b = s.layer(m_to, l);
            if (!a || !b || a->experts.empty() || b->experts.empty()) continue;
            ++compared;
            if (setChanged(*a, *b)) ++changed;
        }
        m_changed.push_back(changed);
        m_compared.push_back(compared);
        m_position.push_back(s.position);
    }
    endInsertRows();
}

double RoutingChangeModel::fraction(int row) const
{
    if (row < 0 || row >= int(m_changed.size()) || m_compared[size_t(row)] == 0) return 0.0;
    return double(m_changed[size_t(row)]) / double(m_compared[size_t(row)]);
}

int RoutingChangeModel::rowCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : int(m_changed.size());
}

int RoutingChangeModel::columnCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : (m_axis == Axis::ByLayer ? 1 : 2);
}

QVariant RoutingChangeModel::data(const QModelIndex& index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid)) return {};
    const size_t row = size_t(index.row());
    const bool positionColumn = m_axis == Axis::ByToken && index.column() == 0;
    switch (role) {
    case Qt::DisplayRole:
    case Qt::EditRole: return positionColumn ? QVariant(double(m_position[row])) : QVariant(fraction(index.row()));
    case ChangedRole: return m_changed[row];
    case ComparedRole: return m_compared[row];
    case Qt::ToolTipRole: {
        const QString what = m_axis == Axis::ByLayer ? tr("layer %1: %2 of %3 tokens changed experts")
                                                     : tr("position %1: %2 of %3 layers changed experts");
        return what.arg(m_axis == Axis::ByLayer ? qint64(row) : m_position[row])
            .arg(m_changed[row])
            .arg(m_compared[row]);
    }
    default: return {};
    }
}

QVariant RoutingChangeModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (role != Qt::DisplayRole || section < 0) return {};
    if (orientation == Qt::Horizontal) {
        if (section >= columnCount()) return {};
        if (m_axis == Axis::ByToken && section == 0) return tr("Position");
        return tr("Changed %1→%2").arg(m_from).arg(m_to);
    }
    if (section >= rowCount()) return {};
    return m_axis == Axis::ByLayer ? QVariant(tr("L%1").arg(section)) : QVariant(m_position[size_t(section)]);
}

} // namespace sage
