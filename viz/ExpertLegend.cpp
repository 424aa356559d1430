#include "viz/ExpertLegend.h"

#include "viz/ExpertColors.h"

#include <QPainter>

#include <algorithm>

namespace sage {

namespace {
constexpr int kSwatch = 12;
constexpr int kGap = 6;
} // namespace

ExpertLegend::ExpertLegend(QWidget* parent) : QWidget(parent)
{
    setSizePolicy(QSizePolicy::Preferred, QSizePolicy::Preferred);
}

void ExpertLegend::setExpertCount(int experts)
{
    experts = std::max(experts, 0);
    if (experts == m_experts) return;
    m_experts = experts;
    updateGeometry();
    update();
}

int ExpertLegend::itemWidth() const
{
    return kSwatch + 4 + fontMetrics().horizontalAdvance(QStringLiteral("E%1").arg(std::max(m_experts - 1, 0))) + kGap;
}

int ExpertLegend::perLine(int width) const
{
    return std::max(1, width / itemWidth());
}

int ExpertLegend::heightForWidth(int width) const
{
    if (m_experts == 0) return 0; // a dense model or no trace: no key to show
    const int lines = (m_experts + perLine(width) - 1) / perLine(width);
    return lines * (fontMetrics().height() + 4);
}

QSize ExpertLegend::sizeHint() const
{
    const int w = std::max(1, std::min(m_experts, 16)) * itemWidth();
    return {w, heightForWidth(w)};
}

QRect ExpertLegend::swatchRect(int expert) const
{
    if (expert < 0 || expert >= m_experts) return {};
    const int n = perLine(width());
    const int lineHeight = fontMetrics().height() + 4;
    const int x = (expert % n) * itemWidth();
    const int y = (expert / n) * lineHeight + (lineHeight - kSwatch) / 2;
    return {x, y, kSwatch, kSwatch};
}

void ExpertLegend::paintEvent(QPaintEvent*)
{
    QPainter p(this);
    p.setPen(palette().color(QPalette::WindowText));
    for (int e = 0; e < m_experts; ++e) {
        const QRect s = swatchRect(e);
        p.fillRect(s, ExpertColors::color(e));
        const QRect text(s.right() + 5, s.center().y() - fontMetrics().height() / 2, itemWidth() - kSwatch - 4,
                         fontMetrics().height());
        p.drawText(text, Qt::AlignLeft | Qt::AlignVCenter, QStringLiteral("E%1").arg(e));
    }
}

} // namespace sage
