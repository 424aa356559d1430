#pragma once

#include "engine/ir/IrReport.h"

#include <QPointer>
#include <QWidget>

#include <memory>

class QLabel;
class QPushButton;
class QTableWidget;
class QTextBrowser;
class QTreeView;

namespace sage {

class DecisionTreeModel;
class StepSelection;

// The decision-point tree of an IR report with the selected point's details: the explanation, the evidence
// (source tokens with relevance, loop-1 vs loop-2 predictions, the loops, streams, layers, heads and experts
// that carried it) and its counterfactual branches beside the original continuation. "Branch here" asks for a
// new generation from that point with the chosen alternative (branchRequested); the window runs it.
// Selecting a node selects its position in every view (StepSelection), and selecting a decision point's
// position elsewhere selects its node.
class DecisionPointPanel : public QWidget
{
    Q_OBJECT

public:
    explicit DecisionPointPanel(QWidget* parent = nullptr);

    void setSelection(StepSelection* selection);
    void setReport(std::shared_ptr<const IrReport> report);
    std::shared_ptr<const IrReport> report() const;
    // A line shown when there is no report (for example "Run Explain (Ctrl+E) after generating").
    void setPlaceholder(const QString& text);

    DecisionTreeModel* model() const { return m_model; }
    QTreeView* treeView() const { return m_tree; }
    QTableWidget* branchTable() const { return m_branches; }
    QTextBrowser* detailView() const { return m_detail; }
    QPushButton* branchButton() const { return m_branchButton; }
    // The decision point shown in the details, -1 for none.
    int64_t currentId() const { return m_currentId; }
    void selectPoint(int64_t id);
    // The alternative "Branch here" would force: the selected branch row's token, else the first runner-up.
    int32_t branchToken() const;

signals:
    // Regenerate from `position` (the decision point's position) with `token` forced there.
    void branchRequested(qint64 position, int token);

private:
    void showPoint(int64_t id);
    void followSelection(int position);
    static QString detailHtml(const IrReport& report, const IrDecisionPoint& d);

    DecisionTreeModel* m_model = nullptr;
    QTreeView* m_tree = nullptr;
    QTextBrowser* m_detail = nullptr;
    QTableWidget* m_branches = nullptr;
    QPushButton* m_branchButton = nullptr;
    QLabel* m_placeholder = nullptr;
    QPointer<StepSelection> m_selection;
    int64_t m_currentId = -1;
    bool m_syncing = false;
};

} // namespace sage
