#pragma once

#include "viz/TraceTableModel.h"

namespace sage {

// Expert routing of one loop: one row per trace step (token), one column per layer. A cell shows the top-1
// expert (DisplayRole, int; invalid when the layer has no routing record) coloured by ExpertColors
// (BackgroundRole). Rows are appended as the trace grows.
class RoutingTableModel : public TraceTableModel
{
    Q_OBJECT

public:
    enum Role {
        ExpertsRole = Qt::UserRole + 1, // QVariantList<int>: chosen experts, most probable first
        WeightsRole,                    // QVariantList<double>: their weights as applied
        PositionRole,                   // qint64: sequence position of the row
        TokenRole,                      // int: token id of the row
    };
    Q_ENUM(Role)

    explicit RoutingTableModel(QObject* parent = nullptr);

    // 1-based; clamped to the trace's loops.
    void setLoop(int loop);
    int loop() const { return m_loop; }
    int loopCount() const;

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

    // Top-1 expert of (row, layer) in the shown loop, or -1.
    int topExpert(int row, int layer) const;
    qint64 positionOfRow(int row) const;
    // The row of a sequence position, or -1.
    int rowOfPosition(qint64 position) const;

protected:
    void resetState() override;
    void appendSteps(qint64 first, qint64 last) override;

private:
    int m_loop = 1;
    int m_rows = 0;
    int m_layers = 0;
};

} // namespace sage
