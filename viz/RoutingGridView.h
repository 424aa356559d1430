#pragma once

#include <QAbstractScrollArea>
#include <QPointer>

namespace sage {

class RoutingTableModel;
class StepSelection;

// The routing timeline: tokens left to right, layers top to bottom, each cell filled with the colour of its
// top-1 expert (ExpertColors). Scrolls horizontally for long runs and follows the newest token while rows
// arrive unless the user scrolled back. Paints only the visible cells straight from the model (no per-token
// rebuild). Clicking a cell selects its position in the StepSelection and emits cellClicked; the selected
// position is outlined.
class RoutingGridView : public QAbstractScrollArea
{
    Q_OBJECT

public:
    explicit RoutingGridView(QWidget* parent = nullptr);

    void setModel(RoutingTableModel* model);
    void setSelection(StepSelection* selection);

    // Cell of (model row, layer) in viewport coordinates; empty when out of range.
    QRect cellRect(int row, int layer) const;
    // (row, layer) under a viewport point, or (-1, -1).
    QPair<int, int> cellAt(const QPoint& viewportPos) const;
    // The layer of the last clicked cell (-1 before any click).
    int selectedLayer() const { return m_selectedLayer; }

    QSize sizeHint() const override;
    QSize minimumSizeHint() const override;

signals:
    void cellClicked(int row, int layer);

protected:
    void paintEvent(QPaintEvent* event) override;
    void resizeEvent(QResizeEvent* event) override;
    void mousePressEvent(QMouseEvent* event) override;
    bool viewportEvent(QEvent* event) override;

private:
    void updateScrollBars();
    void onRowsInserted();
    int columns() const;
    int layers() const;
    int labelWidth() const;
    int headerHeight() const;
    bool darkPalette() const;

    QPointer<RoutingTableModel> m_model;
    QPointer<StepSelection> m_selection;
    int m_cellWidth = 10;
    int m_cellHeight = 14;
    int m_selectedLayer = -1;
};

} // namespace sage
