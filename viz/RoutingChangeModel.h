#pragma once

#include "viz/TraceTableModel.h"

#include <vector>

namespace sage {

// How routing changes between two loops (default 1 -> 2) at the same token and layer: a (token, layer) pair
// "changed" when the set of chosen experts differs. Pairs where either loop has no routing record are skipped.
//   ByLayer: one row per layer; column 0 = fraction of tokens whose expert set changed (for a QVBarModelMapper).
//   ByToken: one row per trace step (appended as the trace grows); column 0 = sequence position, column 1 =
//            fraction of MoE layers whose expert set changed (x / y columns for a QVXYModelMapper).
class RoutingChangeModel : public TraceTableModel
{
    Q_OBJECT

public:
    enum class Axis { ByLayer, ByToken };
    enum Role {
        ChangedRole = Qt::UserRole + 1, // qint64: changed pairs of the row
        ComparedRole,                   // qint64: pairs compared in the row
    };
    Q_ENUM(Role)

    explicit RoutingChangeModel(Axis axis, QObject* parent = nullptr);

    Axis axis() const { return m_axis; }
    // 1-based loops to compare; fromLoop < toLoop.
    void setLoops(int fromLoop, int toLoop);
    int fromLoop() const { return m_from; }
    int toLoop() const { return m_to; }
    // False when the trace has fewer loops than toLoop() (the model is then empty).
    bool comparable() const;

    // The changed fraction of a row (0 when nothing was compared).
    double fraction(int row) const;

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

protected:
    void resetState() override;
    void appendSteps(qint64 first, qint64 last) override;

private:
    Axis m_axis;
    int m_from = 1;
    int m_to = 2;
    std::vector<qint64> m_changed;  // [rows]
    std::vector<qint64> m_compared; // [rows]
    std::vector<qint64> m_position; // [rows] ByToken only
};

} // namespace sage
