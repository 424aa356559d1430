#include "viz/RoutingGridView.h"

#include "viz/ExpertColors.h"
#include "viz/RoutingTableModel.h"
#include "viz/StepSelection.h"

#include <QHelpEvent>
#include <QMouseEvent>
#include <QPainter>
#include <QScrollBar>
#include <QToolTip>

#include <algorithm>

namespace sage {

RoutingGridView::RoutingGridView(QWidget* parent) : QAbstractScrollArea(parent)
{
    setHorizontalScrollBarPolicy(Qt::ScrollBarAsNeeded);
    setVerticalScrollBarPolicy(Qt::ScrollBarAsNeeded);
    viewport()->setMouseTracking(true);
    setFocusPolicy(Qt::StrongFocus);
}

void RoutingGridView::setModel(RoutingTableModel* model)
{
    if (m_model) disconnect(m_model, nullptr, this, nullptr);
    m_model = model;
    if (m_model) {
        connect(m_model, &QAbstractItemModel::rowsInserted, this, &RoutingGridView::onRowsInserted);
        connect(m_model, &QAbstractItemModel::modelReset, this, [this] {
            updateScrollBars();
            viewport()->update();
        });
        connect(m_model, &QAbstractItemModel::dataChanged, viewport(), qOverload<>(&QWidget::update));
    }
    updateScrollBars();
    viewport()->update();
}

void RoutingGridView::setSelection(StepSelection* selection)
{
    if (m_selection) disconnect(m_selection, nullptr, this, nullptr);
    m_selection = selection;
    if (m_selection)
        connect(m_selection, &StepSelection::positionChanged, this, [this](int position) {
            if (m_model) {
                const int row = m_model->rowOfPosition(position);
                const QRect r = cellRect(row, 0);
                if (row >= 0 && (r.isEmpty() || r.left() < labelWidth() || r.right() > viewport()->width()))
                    horizontalScrollBar()->setValue(row * m_cellWidth - (viewport()->width() - labelWidth()) / 2);
            }
            viewport()->update();
        });
    viewport()->update();
}

int RoutingGridView::columns() const
{
    return m_model ? m_model->rowCount() : 0;
}

int RoutingGridView::layers() const
{
    return m_model ? m_model->columnCount() : 0;
}

int RoutingGridView::labelWidth() const
{
    return fontMetrics().horizontalAdvance(QStringLiteral("L000")) + 8;
}

int RoutingGridView::headerHeight() const
{
    return fontMetrics().height() + 4;
}

bool RoutingGridView::darkPalette() const
{
    return palette().color(QPalette::Base).lightnessF() < 0.5;
}

QSize RoutingGridView::sizeHint() const
{
    return {640, headerHeight() + std::max(layers(), 4) * m_cellHeight + 2 * frameWidth() + 16};
}

QSize RoutingGridView::minimumSizeHint() const
{
    return {160, headerHeight() + 4 * m_cellHeight};
}

void RoutingGridView::updateScrollBars()
{
    const int contentWidth = columns() * m_cellWidth;
    const int contentHeight = layers() * m_cellHeight;
    const int viewWidth = std::max(0, viewport()->width() - labelWidth());
    const int viewHeight = std::max(0, viewport()->height() - headerHeight());
    horizontalScrollBar()->setPageStep(viewWidth);
    horizontalScrollBar()->setSingleStep(m_cellWidth * 4);
    horizontalScrollBar()->setRange(0, std::max(0, contentWidth - viewWidth));
    verticalScrollBar()->setPageStep(viewHeight);
    verticalScrollBar()->setSingleStep(m_cellHeight);
    verticalScrollBar()->setRange(0, std::max(0, contentHeight - viewHeight));
}

void RoutingGridView::onRowsInserted()
{
    QScrollBar* bar = horizontalScrollBar();
    const bool atEnd = bar->value() >= bar->maximum();
    updateScrollBars();
    if (atEnd) bar->setValue(bar->maximum());
    viewport()->update();
}

QRect RoutingGridView::cellRect(int row, int layer) const
{
    if (row < 0 || row >= columns() || layer < 0 || layer >= layers()) return {};
    return {labelWidth() + row * m_cellWidth - horizontalScrollBar()->value(),
            headerHeight() + layer * m_cellHeight - verticalScrollBar()->value(), m_cellWidth, m_cellHeight};
}

QPair<int, int> RoutingGridView::cellAt(const QPoint& p) const
{
    if (p.x() < labelWidth() || p.y() < headerHeight()) return {-1, -1};
    const int row = (p.x() - labelWidth() + horizontalScrollBar()->value()) / m_cellWidth;
    const int layer = (p.y() - headerHeight() + verticalScrollBar()->value()) / m_cellHeight;
    if (row < 0 || row >= columns() || layer < 0 || layer >= layers()) return {-1, -1};
    return {row, layer};
}

void RoutingGridView::paintEvent(QPaintEvent*)
{
    QPainter p(viewport());
    const QPalette pal = palette();
    p.fillRect(viewport()->rect(), pal.color(QPalette::Base));
    if (!m_model || layers() == 0) {
        p.setPen(pal.color(QPalette::PlaceholderText));
        p.drawText(viewport()->rect(), Qt::AlignCenter | Qt::TextWordWrap,
                   m_model && m_model->rowCount() > 0 ? tr("This model has no routing (dense feed-forward).")
                                                      : tr("No routing captured yet: generate with capture on."));
        return;
    }
    const int lw = labelWidth(), hh = headerHeight();
    const int hs = horizontalScrollBar()->value(), vs = verticalScrollBar()->value();
    const int firstRow = std::max(0, hs / m_cellWidth);
    const int lastRow = std::min(columns(), (hs + viewport()->width() - lw) / m_cellWidth + 1);
    const int firstLayer = std::max(0, vs / m_cellHeight);
    const int lastLayer = std::min(layers(), (vs + viewport()->height() - hh) / m_cellHeight + 1);
    const QColor missing = ExpertColors::missingColor(darkPalette());

    p.save();
    p.setClipRect(QRect(lw, hh, viewport()->width() - lw, viewport()->height() - hh));
    for (int row = firstRow; row < lastRow; ++row)
        for (int layer = firstLayer; layer < lastLayer; ++layer) {
            const int e = m_model->topExpert(row, layer);
            p.fillRect(cellRect(row, layer), e >= 0 ? ExpertColors::color(e) : missing);
        }
    // The selected position: an outline around its whole column, and its clicked cell.
    const int selectedRow = m_selection ? m_model->rowOfPosition(m_selection->position()) : -1;
    if (selectedRow >= 0) {
        const QRect top = cellRect(selectedRow, 0), bottom = cellRect(selectedRow, layers() - 1);
        p.setPen(QPen(pal.color(QPalette::Text), 2));
        p.setBrush(Qt::NoBrush);
        p.drawRect(top.united(bottom).adjusted(-1, -1, 0, 0));
        if (m_selectedLayer >= 0 && m_selectedLayer < layers())
            p.drawRect(cellRect(selectedRow, m_selectedLayer).adjusted(-2, -2, 1, 1));
    }
    p.restore();

    // Layer labels (fixed while scrolling sideways) and position ticks every 10 tokens.
    p.setPen(pal.color(QPalette::Text));
    const int labelStep = std::max(1, (fontMetrics().height() + m_cellHeight - 1) / m_cellHeight);
    p.save();
    p.setClipRect(QRect(0, hh, lw, viewport()->height() - hh));
    for (int layer = firstLayer; layer < lastLayer; ++layer) {
        if (layer % labelStep) continue;
        const QRect r(0, cellRect(0, layer).top(), lw - 4, m_cellHeight);
        p.drawText(r.isValid() ? r : QRect(0, hh + layer * m_cellHeight - vs, lw - 4, m_cellHeight),
                   Qt::AlignRight | Qt::AlignVCenter, tr("L%1").arg(layer));
    }
    p.restore();
    p.save();
    p.setClipRect(QRect(lw, 0, viewport()->width() - lw, hh));
    for (int row = firstRow - firstRow % 10; row < lastRow; row += 10) {
        if (row < 0 || row >= columns()) continue;
        const int x = lw + row * m_cellWidth - hs;
        p.drawLine(x, hh - 4, x, hh - 1);
        p.drawText(QRect(x + 2, 0, 10 * m_cellWidth, hh - 2), Qt::AlignLeft | Qt::AlignVCenter,
                   QString::number(m_model->positionOfRow(row)));
    }
    p.restore();
}

void RoutingGridView::resizeEvent(QResizeEvent* event)
{
    QAbstractScrollArea::resizeEvent(event);
    updateScrollBars();
}

void RoutingGridView::mousePressEvent(QMouseEvent* event)
{
    const auto [row, layer] = cellAt(event->position().toPoint());
    if (row < 0 || event->button() != Qt::LeftButton) {
        QAbstractScrollArea::mousePressEvent(event);
        return;
    }
    m_selectedLayer = layer;
    emit cellClicked(row, layer);
    if (m_selection) m_selection->setPosition(int(m_model->positionOfRow(row)));
    viewport()->update();
}

bool RoutingGridView::viewportEvent(QEvent* event)
{
    if (event->type() == QEvent::ToolTip && m_model) {
        auto* help = static_cast<QHelpEvent*>(event);
        const auto [row, layer] = cellAt(help->pos());
        if (row >= 0)
            QToolTip::showText(help->globalPos(), m_model->index(row, layer).data(Qt::ToolTipRole).toString(),
                               viewport());
        else
            QToolTip::hideText();
        return true;
    }
    return QAbstractScrollArea::viewportEvent(event);
}

} // namespace sage
