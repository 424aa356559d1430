#include "viz/TokenColorLegend.h"

#include <QPainter>

namespace sage {

namespace {
constexpr int kRampWidth = 90;
constexpr int kSpacing = 5;
} // namespace

TokenColorLegend::TokenColorLegend(QWidget* parent) : QWidget(parent)
{
    setSizePolicy(QSizePolicy::Fixed, QSizePolicy::Fixed);
}

void TokenColorLegend::setMode(TokenColors::Mode mode)
{
    m_mode = mode;
    updateGeometry();
    update();
}

QString TokenColorLegend::lowText() const
{
    return m_mode == TokenColors::Mode::Probability ? tr("p 0") : tr("high entropy");
}

QString TokenColorLegend::highText() const
{
    return m_mode == TokenColors::Mode::Probability ? tr("1") : tr("low");
}

QSize TokenColorLegend::sizeHint() const
{
    const QFontMetrics fm = fontMetrics();
    return {fm.horizontalAdvance(lowText()) + fm.horizontalAdvance(highText()) + kRampWidth + 2 * kSpacing + 2,
            fm.height() + 4};
}

void TokenColorLegend::paintEvent(QPaintEvent*)
{
    QPainter p(this);
    const QFontMetrics fm = fontMetrics();
    const bool dark = palette().color(QPalette::Window).lightnessF() < 0.5;
    const int lowW = fm.horizontalAdvance(lowText());
    p.setPen(palette().color(QPalette::WindowText));
    p.drawText(QRect(0, 0, lowW, height()), Qt::AlignVCenter | Qt::AlignLeft, lowText());
    const QRect ramp(lowW + kSpacing, height() / 2 - 5, kRampWidth, 10);
    for (int x = 0; x < ramp.width(); ++x)
        p.fillRect(QRect(ramp.left() + x, ramp.top(), 1, ramp.height()),
                   TokenColors::chipColor(double(x) / (ramp.width() - 1), dark));
    p.drawText(QRect(ramp.right() + kSpacing, 0, width() - ramp.right() - kSpacing, height()),
               Qt::AlignVCenter | Qt::AlignLeft, highText());
}

} // namespace sage
