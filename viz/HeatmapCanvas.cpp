#include "viz/HeatmapCanvas.h"

#include <QHelpEvent>
#include <QKeyEvent>
#include <QMouseEvent>
#include <QPainter>
#include <QToolTip>
#include <QWheelEvent>

#include <algorithm>
#include <cmath>

namespace sage {

namespace {
constexpr double kMaxZoom = 64.0; // pixels per cell
constexpr int kDragThreshold = 4;
} // namespace

HeatmapCanvas::HeatmapCanvas(QWidget* parent) : QWidget(parent)
{
    setMouseTracking(true);
    setFocusPolicy(Qt::StrongFocus);
    setAttribute(Qt::WA_OpaquePaintEvent);
    setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
}

void HeatmapCanvas::setImage(const QImage& image)
{
    const bool firstImage = m_image.isNull();
    m_image = image;
    if (firstImage || m_fitted) fit();
    update();
}

void HeatmapCanvas::setPlaceholderText(const QString& text)
{
    m_placeholder = text;
    update();
}

void HeatmapCanvas::setHighlightRow(int row)
{
    if (row == m_highlight) return;
    m_highlight = row;
    update();
}

void HeatmapCanvas::setView(double zoom, QPointF offset, bool fitted)
{
    if (zoom == m_zoom && offset == m_offset && fitted == m_fitted) return;
    m_zoom = zoom;
    m_offset = offset;
    m_fitted = fitted;
    update();
}

void HeatmapCanvas::changed()
{
    update();
    emit viewChanged(m_zoom, m_offset, m_fitted);
}

void HeatmapCanvas::fit()
{
    m_fitted = true;
    if (m_image.isNull() || width() <= 0 || height() <= 0) {
        m_zoom = 1.0;
        m_offset = {};
        changed();
        return;
    }
    m_zoom = std::min(double(width()) / m_image.width(), double(height()) / m_image.height());
    m_zoom = std::min(m_zoom, kMaxZoom);
    m_offset = QPointF((width() - m_image.width() * m_zoom) / 2.0, (height() - m_image.height() * m_zoom) / 2.0);
    changed();
}

void HeatmapCanvas::zoomBy(double factor, QPointF anchor)
{
    if (m_image.isNull()) return;
    // Never smaller than a quarter of the fitted size: the map cannot get lost.
    const double fitZoom = std::min(double(width()) / m_image.width(), double(height()) / m_image.height());
    const double z = std::clamp(m_zoom * factor, std::min(fitZoom / 4.0, 1.0), kMaxZoom);
    // Keep the cell under the anchor where it is.
    m_offset = anchor - (anchor - m_offset) * (z / m_zoom);
    m_zoom = z;
    m_fitted = false;
    changed();
}

void HeatmapCanvas::zoomBy(double factor)
{
    zoomBy(factor, QPointF(width() / 2.0, height() / 2.0));
}

void HeatmapCanvas::panBy(QPointF delta)
{
    m_offset += delta;
    m_fitted = false;
    changed();
}

QPoint HeatmapCanvas::cellAt(QPointF pos) const
{
    if (m_image.isNull() || m_zoom <= 0) return {-1, -1};
    const double c = std::floor((pos.x() - m_offset.x()) / m_zoom);
    const double r = std::floor((pos.y() - m_offset.y()) / m_zoom);
    if (c < 0 || r < 0 || c >= m_image.width() || r >= m_image.height()) return {-1, -1};
    return {int(c), int(r)}; // x = column, y = row
}

QRectF HeatmapCanvas::cellRect(int row, int col) const
{
    return QRectF(m_offset.x() + col * m_zoom, m_offset.y() + row * m_zoom, m_zoom, m_zoom);
}

void HeatmapCanvas::paintEvent(QPaintEvent*)
{
    QPainter p(this);
    p.fillRect(rect(), palette().color(QPalette::Base));
    if (m_image.isNull()) {
        p.setPen(palette().color(QPalette::PlaceholderText));
        p.drawText(rect().adjusted(12, 12, -12, -12), Qt::AlignCenter | Qt::TextWordWrap, m_placeholder);
        return;
    }
    // Only the visible part of the image is drawn, with nearest-neighbour sampling: cells stay crisp and the
    // cost follows the widget size, not the map size.
    const QRectF whole(m_offset, QSizeF(m_image.width() * m_zoom, m_image.height() * m_zoom));
    const QRectF target = whole.intersected(QRectF(rect()));
    if (!target.isEmpty()) {
        const QRectF source((target.left() - m_offset.x()) / m_zoom, (target.top() - m_offset.y()) / m_zoom,
                            target.width() / m_zoom, target.height() / m_zoom);
        p.setRenderHint(QPainter::SmoothPixmapTransform, false);
        p.drawImage(target, m_image, source);
    }
    if (m_highlight >= 0 && m_highlight < m_image.height()) {
        const QRectF row(m_offset.x(), m_offset.y() + m_highlight * m_zoom, whole.width(), std::max(m_zoom, 1.0));
        p.setPen(QPen(palette().color(QPalette::Highlight), 2));
        p.setBrush(Qt::NoBrush);
        p.drawRect(row.adjusted(-1, -1, 1, 1));
    }
    if (hasFocus()) {
        p.setPen(QPen(palette().color(QPalette::Highlight), 1, Qt::DotLine));
        p.drawRect(rect().adjusted(0, 0, -1, -1));
    }
}

void HeatmapCanvas::resizeEvent(QResizeEvent*)
{
    if (m_fitted) fit();
}

void HeatmapCanvas::wheelEvent(QWheelEvent* event)
{
    const double steps = event->angleDelta().y() / 120.0;
    if (steps == 0) return;
    zoomBy(std::pow(1.25, steps), event->position());
    event->accept();
}

void HeatmapCanvas::mousePressEvent(QMouseEvent* event)
{
    if (event->button() != Qt::LeftButton) return;
    setFocus(Qt::MouseFocusReason);
    m_pressed = true;
    m_dragging = false;
    m_pressPos = event->position().toPoint();
    m_pressOffset = m_offset;
}

void HeatmapCanvas::mouseMoveEvent(QMouseEvent* event)
{
    const QPoint pos = event->position().toPoint();
    if (m_pressed) {
        if (!m_dragging && (pos - m_pressPos).manhattanLength() >= kDragThreshold) {
            m_dragging = true;
            setCursor(Qt::ClosedHandCursor);
        }
        if (m_dragging) {
            m_offset = m_pressOffset + QPointF(pos - m_pressPos);
            m_fitted = false;
            changed();
        }
        return;
    }
    const QPoint cell = cellAt(event->position());
    emit cellHovered(cell.y(), cell.x());
}

void HeatmapCanvas::mouseReleaseEvent(QMouseEvent* event)
{
    if (event->button() != Qt::LeftButton || !m_pressed) return;
    m_pressed = false;
    if (m_dragging) {
        m_dragging = false;
        unsetCursor();
        return;
    }
    const QPoint cell = cellAt(event->position());
    if (cell.x() >= 0) emit cellClicked(cell.y(), cell.x());
}

void HeatmapCanvas::keyPressEvent(QKeyEvent* event)
{
    const double step = std::max(width(), height()) / 10.0;
    switch (event->key()) {
    case Qt::Key_Plus:
    case Qt::Key_Equal: zoomBy(1.25); break;
    case Qt::Key_Minus: zoomBy(0.8); break;
    case Qt::Key_F:
    case Qt::Key_0: fit(); break;
    case Qt::Key_Left: panBy({step, 0}); break;
    case Qt::Key_Right: panBy({-step, 0}); break;
    case Qt::Key_Up: panBy({0, step}); break;
    case Qt::Key_Down: panBy({0, -step}); break;
    default: QWidget::keyPressEvent(event); return; // layer/head keys belong to the view
    }
    event->accept();
}

bool HeatmapCanvas::event(QEvent* event)
{
    if (event->type() == QEvent::ToolTip) {
        auto* help = static_cast<QHelpEvent*>(event);
        const QPoint cell = cellAt(help->pos());
        if (cell.x() >= 0 && m_toolTip) {
            const QString text = m_toolTip(cell.y(), cell.x());
            if (!text.isEmpty()) {
                QToolTip::showText(help->globalPos(), text, this, cellRect(cell.y(), cell.x()).toAlignedRect());
                return true;
            }
        }
        QToolTip::hideText();
        event->ignore();
        return true;
    }
    return QWidget::event(event);
}

} // namespace sage
