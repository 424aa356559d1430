#pragma once

#include <QAbstractScrollArea>
#include <QPointer>
#include <QRect>
#include <QVector>

class QAbstractItemModel;

namespace sage {

class StepSelection;

// The token stream as a flow of chips: prompt tokens in a neutral colour, generated tokens coloured by the
// model's ScoreRole (probability or entropy). A chip whose text is a newline escape ends its line, so code
// keeps its shape. Clicking a chip sets the shared StepSelection; hovering shows its alternatives.
// Layout is incremental: appended rows are placed after the last chip, so streaming costs O(new rows).
class TokenStreamView : public QAbstractScrollArea
{
    Q_OBJECT

public:
    explicit TokenStreamView(QWidget* parent = nullptr);

    // model: a TokenStreamModel (or any list model with its roles).
    void setModel(QAbstractItemModel* model);
    void setSelection(StepSelection* selection);
    // Keeps the newest chip in view while rows arrive, unless the user scrolled up.
    void setFollowTail(bool follow) { m_followTail = follow; }

    // The chip rectangle of a row in viewport coordinates (empty when out of range); for tests and tools.
    QRect chipRect(int row) const;
    int rowAt(const QPoint& viewportPos) const;

    QSize sizeHint() const override;

protected:
    void paintEvent(QPaintEvent* event) override;
    void resizeEvent(QResizeEvent* event) override;
    void mousePressEvent(QMouseEvent* event) override;
    void mouseMoveEvent(QMouseEvent* event) override;
    void leaveEvent(QEvent* event) override;
    void keyPressEvent(QKeyEvent* event) override;
    bool viewportEvent(QEvent* event) override;
    void changeEvent(QEvent* event) override;

private:
    void relayout();
    void layoutRows(int first, int last);
    void updateScrollBars();
    void ensureVisible(int row);
    bool darkPalette() const;

    QPointer<QAbstractItemModel> m_model;
    QPointer<StepSelection> m_selection;
    QVector<QRect> m_rects; // [rows] chip rectangles in content coordinates
    QPoint m_cursor;        // where the next chip goes (content coordinates)
    int m_lineHeight = 0;
    int m_contentHeight = 0;
    int m_hoverRow = -1;
    bool m_followTail = true;
};

} // namespace sage
