#include "viz/ExpertLoadModel.h"

#include "engine/capture/Trace.h"
#include "viz/TraceFeed.h"

#include <algorithm>

namespace sage {

ExpertLoadModel::ExpertLoadModel(QObject* parent) : TraceTableModel(parent) {}

void ExpertLoadModel::resetState()
{
    m_experts = hasFeedData() ? int(feed()->info().experts) : 0;
    m_loops = m_experts > 0 ? int(std::max<int64_t>(1, feed()->info().loops)) : 0;
    m_counts.assign(size_t(m_loops) * size_t(m_experts), 0);
    m_slots.assign(size_t(m_loops), 0);
}

void ExpertLoadModel::appendSteps(qint64 first, qint64 last)
{
    if (m_experts == 0 || last <= first) return;
    for (qint64 i = first; i < last; ++i) {
        for (const LayerRecord& r : feed()->step(i).layers) {
            if (r.loop < 1 || r.loop > m_loops) continue;
            for (int32_t e : r.experts) {
                if (e < 0 || e >= m_experts) continue;
                ++m_counts[size_t(r.loop - 1) * size_t(m_experts) + size_t(e)];
                ++m_slots[size_t(r.loop - 1)];
            }
        }
    }
    emit dataChanged(index(0, 0), index(m_experts - 1, m_loops - 1));
}

int ExpertLoadModel::rowCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : m_experts;
}

int ExpertLoadModel::columnCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : m_loops;
}

double ExpertLoadModel::share(int expert, int loop) const
{
    if (expert < 0 || expert >= m_experts || loop < 1 || loop > m_loops) return 0.0;
    const qint64 total = m_slots[size_t(loop - 1)];
    return total > 0 ? double(m_counts[size_t(loop - 1) * size_t(m_experts) + size_t(expert)]) / double(total) : 0.0;
}

double ExpertLoadModel::maxShare() const
{
    double m = 0.0;
    for (int l = 1; l <= m_loops; ++l)
        for (int e = 0; e < m_experts; ++e) m = std::max(m, share(e, l));
    return m;
}

QVariant ExpertLoadModel::data(const QModelIndex& index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid)) return {};
    const int expert = index.row(), loop = index.column() + 1;
    switch (role) {
    case Qt::DisplayRole:
    case Qt::EditRole: return share(expert, loop);
    case CountRole: return m_counts[size_t(loop - 1) * size_t(m_experts) + size_t(expert)];
    case SlotsRole: return m_slots[size_t(loop - 1)];
    case Qt::ToolTipRole:
        return tr("expert %1, loop %2: %3 of %4 routing slots (%5%)")
            .arg(expert)
            .arg(loop)
            .arg(m_counts[size_t(loop - 1) * size_t(m_experts) + size_t(expert)])
            .arg(m_slots[size_t(loop - 1)])
            .arg(100.0 * share(expert, loop), 0, 'f', 1);
    default: return {};
    }
}

QVariant ExpertLoadModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (role != Qt::DisplayRole || section < 0) return {};
    if (orientation == Qt::Horizontal) return section < m_loops ? QVariant(tr("Loop %1").arg(section + 1)) : QVariant();
    return section < m_experts ? QVariant(tr("E%1").arg(section)) : QVariant();
}

} // namespace sage
