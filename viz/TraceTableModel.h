#pragma once

#include "viz/TraceFeed.h"

#include <QAbstractTableModel>
#include <QPointer>

namespace sage {

// Base of the table models over a TraceFeed: follows its reset and batches, so that a subclass only folds the
// new steps [first, last) into what it shows (rows appended, or aggregates updated) and never rebuilds per token.
class TraceTableModel : public QAbstractTableModel
{
    Q_OBJECT

public:
    explicit TraceTableModel(QObject* parent = nullptr);

    void setFeed(TraceFeed* feed);
    TraceFeed* feed() const { return m_feed; }

protected:
    // Called inside beginResetModel/endResetModel after the feed changed trace (or a setting changed): start
    // over from feed()->stepCount() == 0 or from the steps the feed already holds (appendSteps follows).
    virtual void resetState() = 0;
    // Folds steps [first, last) in; the subclass emits its own row insertions or dataChanged.
    virtual void appendSteps(qint64 first, qint64 last) = 0;
    // resetState() and then every delivered step again; for settings such as the loop shown.
    void rebuild();
    bool hasFeedData() const;

private:
    QPointer<TraceFeed> m_feed;
};

} // namespace sage
