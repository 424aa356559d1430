#pragma once

#include "engine/ir/IrReport.h"

#include <QAbstractItemModel>

#include <memory>
#include <vector>

namespace sage {

// The decision points of an IR report as a tree: a point's parent is the earlier decision point it depends on
// most (IrDecisionPoint::parent), roots are the points with parent -1. Read-only.
//
// Columns: Token (the chosen token), p (its probability), Alternatives (runner-ups with probabilities),
// Score (influence x (1 - margin)), Position (sequence position). IdRole gives the decision point's id,
// PositionRole its sequence position; ToolTip is the plain-language explanation.
class DecisionTreeModel : public QAbstractItemModel
{
    Q_OBJECT

public:
    enum Column { TokenColumn, ProbabilityColumn, AlternativesColumn, ScoreColumn, PositionColumn, ColumnCount };
    enum Role { IdRole = Qt::UserRole + 1, PositionRole };

    explicit DecisionTreeModel(QObject* parent = nullptr);

    // Replaces the report (null: empty). A report whose parents do not precede their children is shown flat.
    void setReport(std::shared_ptr<const IrReport> report);
    std::shared_ptr<const IrReport> report() const { return m_report; }

    // The index (column 0) of decision point `id`, invalid when absent.
    QModelIndex indexForId(int64_t id) const;
    // The decision point at an index, or null.
    const IrDecisionPoint* point(const QModelIndex& index) const;

    QModelIndex index(int row, int column, const QModelIndex& parent = {}) const override;
    QModelIndex parent(const QModelIndex& child) const override;
    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

    // A token's text as the views show it: quoted, with newlines and tabs escaped.
    static QString displayToken(const std::string& text);

private:
    // Node i = decision point i; kRoot = the invisible root.
    static constexpr int64_t kRoot = -1;
    const std::vector<int64_t>& childrenOf(int64_t node) const;

    std::shared_ptr<const IrReport> m_report;
    std::vector<int64_t> m_parent;                // [points] node parent (kRoot for roots)
    std::vector<int64_t> m_row;                   // [points] row under the parent
    std::vector<std::vector<int64_t>> m_children; // [points + 1] children, index 0 = root
};

} // namespace sage
