#pragma once

#include <QImage>
#include <QWidget>

#include <functional>

namespace sage {

// Draws a cached heatmap image (one pixel per cell) with zoom and pan; never computes anything itself.
// Mouse: wheel zooms around the cursor, drag pans, click reports the cell, hover shows the tooltip from the
// provider. Keys: + / - zoom, F or 0 fits, arrows pan; other keys go to the parent (layer and head stepping).
class HeatmapCanvas : public QWidget
{
    Q_OBJECT

public:
    using ToolTipProvider = std::function<QString(int row, int col)>;

    explicit HeatmapCanvas(QWidget* parent = nullptr);

    // A new image for the same map keeps the zoom and pan unless the view is fitted (then it fits again).
    void setImage(const QImage& image);
    const QImage& image() const { return m_image; }
    void setPlaceholderText(const QString& text);
    QString placeholderText() const { return m_placeholder; }
    // Image row drawn with an outline (the selected step), or -1.
    void setHighlightRow(int row);
    int highlightRow() const { return m_highlight; }
    void setToolTipProvider(ToolTipProvider provider) { m_toolTip = std::move(provider); }

    double zoom() const { return m_zoom; }
    QPointF offset() const { return m_offset; }
    bool isFitted() const { return m_fitted; }
    // Sets zoom and pan (another canvas showing the same positions follows this one through viewChanged).
    void setView(double zoom, QPointF offset, bool fitted);
    void zoomBy(double factor, QPointF anchor);
    void zoomBy(double factor);
    void panBy(QPointF delta);
    void fit();

    // The cell under a widget position, or (-1, -1) outside the image.
    QPoint cellAt(QPointF pos) const;
    // A cell's rectangle in widget coordinates.
    QRectF cellRect(int row, int col) const;

    QSize sizeHint() const override { return {360, 360}; }
    QSize minimumSizeHint() const override { return {120, 120}; }

signals:
    void cellClicked(int row, int col);
    void cellHovered(int row, int col);
    void viewChanged(double zoom, QPointF offset, bool fitted);

protected:
    void paintEvent(QPaintEvent* event) override;
    void resizeEvent(QResizeEvent* event) override;
    void wheelEvent(QWheelEvent* event) override;
    void mousePressEvent(QMouseEvent* event) override;
    void mouseMoveEvent(QMouseEvent* event) override;
    void mouseReleaseEvent(QMouseEvent* event) override;
    void keyPressEvent(QKeyEvent* event) override;
    bool event(QEvent* event) override;

private:
    void changed();

    QImage m_image;
    QString m_placeholder;
    int m_highlight = -1;
    ToolTipProvider m_toolTip;
    double m_zoom = 1.0;  // widget pixels per cell
    QPointF m_offset;     // widget position of cell (0, 0)'s top-left corner
    bool m_fitted = true; // follow the widget size until the user zooms or pans
    QPoint m_pressPos;
    QPointF m_pressOffset;
    bool m_dragging = false;
    bool m_pressed = false;
};

} // namespace sage
