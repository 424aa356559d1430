#pragma once

#include "viz/TraceTableModel.h"

#include <vector>

namespace sage {

// Per-expert load per loop: one row per expert, one column per loop. A cell is the share (0..1) of that
// loop's routing slots (token x MoE layer x chosen expert) that went to the expert, so a balanced router
// shows 1/E everywhere. Columns are bar sets for a QVBarModelMapper (categories = experts).
class ExpertLoadModel : public TraceTableModel
{
    Q_OBJECT

public:
    enum Role {
        CountRole = Qt::UserRole + 1, // qint64: slots routed to the expert in the loop
        SlotsRole,                    // qint64: all routing slots of the loop
    };
    Q_ENUM(Role)

    explicit ExpertLoadModel(QObject* parent = nullptr);

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

    double share(int expert, int loop) const; // loop 1-based
    // The largest share in the table (for an axis range).
    double maxShare() const;

protected:
    void resetState() override;
    void appendSteps(qint64 first, qint64 last) override;

private:
    int m_experts = 0;
    int m_loops = 0;
    std::vector<qint64> m_counts; // [loops, experts]
    std::vector<qint64> m_slots;  // [loops]
};

} // namespace sage
