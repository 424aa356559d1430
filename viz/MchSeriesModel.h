#pragma once

#include "viz/TraceTableModel.h"

namespace sage {

// One MCH quantity of one (loop, layer) over tokens, for line charts through QVXYModelMapper: one row per trace
// step (appended as the trace grows); column 0 = sequence position (x), column 1 + h = head h's value (y).
//   Gate:       the loop gate g (weight of the global stream; 1 - g goes to the local stream)
//   Divergence: 1 - cos(A, B) of the head's global and local stream outputs
// Loop 1 has neither (one stream): the loop must be >= 2. A step without the record shows 0 (invalid for
// HasValueRole) so that a series keeps one point per token.
class MchSeriesModel : public TraceTableModel
{
    Q_OBJECT

public:
    enum class Quantity { Gate, Divergence };
    enum Role { HasValueRole = Qt::UserRole + 1 }; // bool
    Q_ENUM(Role)

    explicit MchSeriesModel(Quantity quantity, QObject* parent = nullptr);

    Quantity quantity() const { return m_quantity; }
    void setLoopLayer(int loop, int layer);
    int loop() const { return m_loop; }
    int layer() const { return m_layer; }
    int heads() const { return m_heads; }

    // NaN when the step has no record for the shown (loop, layer).
    double value(int row, int head) const;

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

protected:
    void resetState() override;
    void appendSteps(qint64 first, qint64 last) override;

private:
    Quantity m_quantity;
    int m_loop = 2;
    int m_layer = 0;
    int m_heads = 0;
    int m_rows = 0;
};

} // namespace sage
