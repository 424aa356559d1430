#include "viz/RouterProbsModel.h"

#include "engine/capture/Trace.h"
#include "viz/TraceFeed.h"

namespace sage {

RouterProbsModel::RouterProbsModel(QObject* parent) : TraceTableModel(parent) {}

void RouterProbsModel::setCell(qint64 position, int loop, int layer)
{
    m_position = position < 0 ? -1 : position;
    m_loop = loop;
    m_layer = layer;
    load();
}

void RouterProbsModel::resetState()
{
    m_experts = hasFeedData() ? int(feed()->info().experts) : 0;
    m_probs.assign(size_t(m_experts), 0.0);
    m_rank.assign(size_t(m_experts), -1);
    m_hasCell = false;
    m_full = false;
}

void RouterProbsModel::appendSteps(qint64 first, qint64 last)
{
    if (m_hasCell || m_position < 0 || !hasFeedData()) return;
    const qint64 i = m_position - feed()->origin();
    if (i >= first && i < last) load();
}

void RouterProbsModel::load()
{
    // The shape (one row per expert) only changes with the trace; a new cell changes values only.
    std::fill(m_probs.begin(), m_probs.end(), 0.0);
    std::fill(m_rank.begin(), m_rank.end(), -1);
    m_hasCell = false;
    m_full = false;
    const StepRecord* s = hasFeedData() && m_position >= 0 ? feed()->stepAtPosition(m_position) : nullptr;
    const LayerRecord* r = s ? s->layer(m_loop, m_layer) : nullptr;
    if (r && m_experts > 0) {
        if (r->routerProbs.size() == size_t(m_experts)) {
            m_full = true;
            for (int e = 0; e < m_experts; ++e) m_probs[size_t(e)] = r->routerProbs[size_t(e)];
        }
        for (size_t k = 0; k < r->experts.size(); ++k) {
            const int e = r->experts[k];
            if (e < 0 || e >= m_experts) continue;
            m_rank[size_t(e)] = int(k);
            if (!m_full && k < r->expertWeights.size()) m_probs[size_t(e)] = r->expertWeights[k];
        }
        m_hasCell = m_full || !r->experts.empty();
    }
    if (m_experts > 0) emit dataChanged(index(0, 0), index(m_experts - 1, 0));
    emit cellChanged();
}

double RouterProbsModel::probability(int expert) const
{
    return expert >= 0 && expert < m_experts ? m_probs[size_t(expert)] : 0.0;
}

int RouterProbsModel::rowCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : m_experts;
}

int RouterProbsModel::columnCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : 1;
}

QVariant RouterProbsModel::data(const QModelIndex& index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid)) return {};
    const size_t e = size_t(index.row());
    switch (role) {
    case Qt::DisplayRole:
    case Qt::EditRole: return m_probs[e];
    case ChosenRole: return m_rank[e] >= 0;
    case RankRole: return m_rank[e];
    case Qt::ToolTipRole:
        return m_rank[e] >= 0 ? tr("expert %1: p = %2 (choice %3)").arg(e).arg(m_probs[e], 0, 'f', 4).arg(m_rank[e] + 1)
                              : tr("expert %1: p = %2").arg(e).arg(m_probs[e], 0, 'f', 4);
    default: return {};
    }
}

QVariant RouterProbsModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (role != Qt::DisplayRole || section < 0) return {};
    if (orientation == Qt::Horizontal) return section == 0 ? QVariant(tr("Router probability")) : QVariant();
    return section < m_experts ? QVariant(tr("E%1").arg(section)) : QVariant();
}

} // namespace sage
