#include "viz/TokenStreamView.h"

#include "viz/StepSelection.h"
#include "viz/TokenColors.h"
#include "viz/TokenStreamModel.h"

#include <QAbstractItemModel>
#include <QHelpEvent>
#include <QKeyEvent>
#include <QMouseEvent>
#include <QPainter>
#include <QScrollBar>
#include <QToolTip>

#include <cmath>

namespace sage {

namespace {
constexpr int kMargin = 8; // around the flow
constexpr int kGap = 3;    // between chips
constexpr int kPadX = 4;   // text padding inside a chip
constexpr int kPadY = 2;
constexpr int kLineGap = 4;  // between lines
constexpr int kMinChip = 10; // width of a chip with empty text

bool endsLine(const QString& text)
{
    return text.endsWith(QLatin1String("\\n"));
}
} // namespace

TokenStreamView::TokenStreamView(QWidget* parent) : QAbstractScrollArea(parent)
{
    setMouseTracking(true);
    viewport()->setMouseTracking(true);
    setFocusPolicy(Qt::StrongFocus);
    setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    verticalScrollBar()->setSingleStep(16);
}

QSize TokenStreamView::sizeHint() const
{
    return {480, 240};
}

void TokenStreamView::setModel(QAbstractItemModel* model)
{
    if (m_model) disconnect(m_model, nullptr, this, nullptr);
    m_model = model;
    if (m_model) {
        connect(m_model, &QAbstractItemModel::modelReset, this, &TokenStreamView::relayout);
        connect(m_model, &QAbstractItemModel::layoutChanged, this, &TokenStreamView::relayout);
        connect(m_model, &QAbstractItemModel::rowsRemoved, this, &TokenStreamView::relayout);
        connect(m_model, &QAbstractItemModel::dataChanged, viewport(), qOverload<>(&QWidget::update));
        connect(m_model, &QAbstractItemModel::rowsInserted, this, [this](const QModelIndex&, int first, int last) {
            if (first != m_rects.size()) { // not an append: lay everything out again
                relayout();
                return;
            }
            QScrollBar* bar = verticalScrollBar();
            const bool atEnd = bar->value() >= bar->maximum();
            layoutRows(first, last + 1);
            updateScrollBars();
            if (m_followTail && atEnd) bar->setValue(bar->maximum());
            viewport()->update();
        });
    }
    relayout();
}

void TokenStreamView::setSelection(StepSelection* selection)
{
    if (m_selection) disconnect(m_selection, nullptr, this, nullptr);
    m_selection = selection;
    if (m_selection)
        connect(m_selection, &StepSelection::positionChanged, this, [this](int row) {
            ensureVisible(row);
            viewport()->update();
        });
    viewport()->update();
}

void TokenStreamView::relayout()
{
    m_rects.clear();
    m_cursor = QPoint(kMargin, kMargin);
    m_lineHeight = fontMetrics().height() + 2 * kPadY;
    m_contentHeight = 0;
    m_hoverRow = -1;
    if (m_model) layoutRows(0, m_model->rowCount());
    updateScrollBars();
    viewport()->update();
}

void TokenStreamView::layoutRows(int first, int last)
{
    const QFontMetrics fm = fontMetrics();
    m_lineHeight = fm.height() + 2 * kPadY;
    const int right = std::max(viewport()->width() - kMargin, kMargin + 40);
    m_rects.resize(last);
    for (int row = first; row < last; ++row) {
        const QString text = m_model->index(row, 0).data(Qt::DisplayRole).toString();
        const int w = std::max(kMinChip, fm.horizontalAdvance(text) + 2 * kPadX);
        if (m_cursor.x() > kMargin && m_cursor.x() + w > right)
            m_cursor = QPoint(kMargin, m_cursor.y() + m_lineHeight + kLineGap);
        m_rects[row] = QRect(m_cursor, QSize(w, m_lineHeight));
        m_cursor.rx() += w + kGap;
        if (endsLine(text)) m_cursor = QPoint(kMargin, m_cursor.y() + m_lineHeight + kLineGap);
    }
    m_contentHeight = (m_rects.isEmpty() ? 0 : m_rects.back().bottom() + 1) + kMargin;
}

void TokenStreamView::updateScrollBars()
{
    QScrollBar* bar = verticalScrollBar();
    bar->setPageStep(viewport()->height());
    bar->setRange(0, std::max(0, m_contentHeight - viewport()->height()));
}

void TokenStreamView::ensureVisible(int row)
{
    if (row < 0 || row >= m_rects.size()) return;
    const QRect r = m_rects[row];
    QScrollBar* bar = verticalScrollBar();
    if (r.top() - kMargin < bar->value())
        bar->setValue(r.top() - kMargin);
    else if (r.bottom() + kMargin > bar->value() + viewport()->height())
        bar->setValue(r.bottom() + kMargin - viewport()->height());
}

QRect TokenStreamView::chipRect(int row) const
{
    if (row < 0 || row >= m_rects.size()) return {};
    return m_rects[row].translated(0, -verticalScrollBar()->value());
}

int TokenStreamView::rowAt(const QPoint& viewportPos) const
{
    const QPoint p = viewportPos + QPoint(0, verticalScrollBar()->value());
    // Rows are laid out in reading order: binary search the line, then scan it.
    int lo = 0, hi = int(m_rects.size());
    while (lo < hi) {
        const int mid = (lo + hi) / 2;
        if (m_rects[mid].bottom() < p.y())
            lo = mid + 1;
        else
            hi = mid;
    }
    for (int row = lo; row < m_rects.size() && m_rects[row].top() <= p.y(); ++row)
        if (m_rects[row].contains(p)) return row;
    return -1;
}

bool TokenStreamView::darkPalette() const
{
    return palette().color(QPalette::Base).lightnessF() < 0.5;
}

void TokenStreamView::paintEvent(QPaintEvent*)
{
    QPainter p(viewport());
    const QPalette pal = palette();
    p.fillRect(viewport()->rect(), pal.color(QPalette::Base));
    if (!m_model) return;
    const bool dark = darkPalette();
    const int scroll = verticalScrollBar()->value();
    const int selected = m_selection ? m_selection->position() : -1;
    const int top = scroll, bottom = scroll + viewport()->height();

    p.setRenderHint(QPainter::Antialiasing, true);
    p.translate(0, -scroll);
    // Find the first visible row (rows are in reading order).
    int lo = 0, hi = int(m_rects.size());
    while (lo < hi) {
        const int mid = (lo + hi) / 2;
        if (m_rects[mid].bottom() < top)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (int row = lo; row < m_rects.size() && m_rects[row].top() <= bottom; ++row) {
        const QModelIndex idx = m_model->index(row, 0);
        const QRectF r = QRectF(m_rects[row]).adjusted(0.5, 0.5, -0.5, -0.5);
        const double score = idx.data(TokenStreamModel::ScoreRole).toDouble();
        const bool prompt = idx.data(TokenStreamModel::IsPromptRole).toBool();
        const QColor fill =
            prompt || std::isnan(score) ? TokenColors::promptChipColor(dark) : TokenColors::chipColor(score, dark);
        p.setBrush(fill);
        if (row == selected)
            p.setPen(QPen(pal.color(QPalette::Highlight), 2.0));
        else if (row == m_hoverRow)
            p.setPen(QPen(pal.color(QPalette::Text), 1.0));
        else if (prompt)
            p.setPen(QPen(fill.darker(dark ? 70 : 125), 1.0, Qt::DashLine));
        else
            p.setPen(Qt::NoPen);
        p.drawRoundedRect(r, 4, 4);
        if (idx.data(TokenStreamModel::DecisionPointRole).toBool()) {
            // A decision point: a filled corner triangle in the highlight colour (Decisions dock explains it).
            const QPointF tl = r.topLeft();
            const QPointF tri[3] = {tl, tl + QPointF(7, 0), tl + QPointF(0, 7)};
            p.setPen(Qt::NoPen);
            p.setBrush(pal.color(QPalette::Highlight));
            p.drawPolygon(tri, 3);
        }
        p.setPen(TokenColors::textColorOn(fill));
        p.drawText(m_rects[row].adjusted(kPadX, 0, -kPadX + 1, 0),
                   Qt::AlignLeft | Qt::AlignVCenter | Qt::TextSingleLine, idx.data(Qt::DisplayRole).toString());
    }
}

void TokenStreamView::resizeEvent(QResizeEvent* event)
{
    QAbstractScrollArea::resizeEvent(event);
    relayout();
}

void TokenStreamView::mousePressEvent(QMouseEvent* event)
{
    if (event->button() == Qt::LeftButton && m_selection) {
        const int row = rowAt(event->position().toPoint());
        if (row >= 0) m_selection->setPosition(row);
    }
    QAbstractScrollArea::mousePressEvent(event);
}

void TokenStreamView::mouseMoveEvent(QMouseEvent* event)
{
    const int row = rowAt(event->position().toPoint());
    if (row != m_hoverRow) {
        m_hoverRow = row;
        viewport()->update();
    }
    QAbstractScrollArea::mouseMoveEvent(event);
}

void TokenStreamView::leaveEvent(QEvent* event)
{
    m_hoverRow = -1;
    viewport()->update();
    QAbstractScrollArea::leaveEvent(event);
}

void TokenStreamView::keyPressEvent(QKeyEvent* event)
{
    if (!m_selection || m_rects.isEmpty()) return QAbstractScrollArea::keyPressEvent(event);
    const int last = int(m_rects.size()) - 1;
    const int cur = m_selection->position();
    switch (event->key()) {
    case Qt::Key_Left: m_selection->setPosition(cur < 0 ? last : std::max(0, cur - 1)); break;
    case Qt::Key_Right: m_selection->setPosition(cur < 0 ? 0 : std::min(last, cur + 1)); break;
    case Qt::Key_Home: m_selection->setPosition(0); break;
    case Qt::Key_End: m_selection->setPosition(last); break;
    default: QAbstractScrollArea::keyPressEvent(event); return;
    }
    event->accept();
}

bool TokenStreamView::viewportEvent(QEvent* event)
{
    if (event->type() == QEvent::ToolTip && m_model) {
        auto* help = static_cast<QHelpEvent*>(event);
        const int row = rowAt(help->pos());
        if (row >= 0)
            QToolTip::showText(help->globalPos(), m_model->index(row, 0).data(Qt::ToolTipRole).toString(), viewport(),
                               chipRect(row));
        else
            QToolTip::hideText();
        return true;
    }
    return QAbstractScrollArea::viewportEvent(event);
}

void TokenStreamView::changeEvent(QEvent* event)
{
    QAbstractScrollArea::changeEvent(event);
    if (event->type() == QEvent::FontChange) relayout();
    if (event->type() == QEvent::PaletteChange) viewport()->update();
}

} // namespace sage
