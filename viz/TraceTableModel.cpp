#include "viz/TraceTableModel.h"

#include "viz/TraceFeed.h"

namespace sage {

TraceTableModel::TraceTableModel(QObject* parent) : QAbstractTableModel(parent) {}

void TraceTableModel::setFeed(TraceFeed* feed)
{
    if (m_feed == feed) return;
    if (m_feed) disconnect(m_feed, nullptr, this, nullptr);
    m_feed = feed;
    if (m_feed) {
        connect(m_feed, &TraceFeed::traceReset, this, &TraceTableModel::rebuild);
        connect(m_feed, &TraceFeed::stepsAppended, this, [this](qint64 a, qint64 b) { appendSteps(a, b); });
        // A feed deleted first (window teardown) must not leave rows that point at its records.
        connect(m_feed, &QObject::destroyed, this, &TraceTableModel::rebuild);
    }
    rebuild();
}

bool TraceTableModel::hasFeedData() const
{
    return m_feed && m_feed->hasTrace();
}

void TraceTableModel::rebuild()
{
    beginResetModel();
    resetState();
    endResetModel();
    if (m_feed && m_feed->stepCount() > 0) appendSteps(0, m_feed->stepCount());
}

} // namespace sage
