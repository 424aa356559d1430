#include "viz/ChartStyle.h"

#include <QAbstractAxis>
#include <QChart>
#include <QChartView>
#include <QEvent>
#include <QLegend>
#include <QPalette>

namespace sage::ChartStyle {

namespace {

// Re-colours the chart of the view it filters when the view's palette changes.
class PaletteFollower : public QObject
{
public:
    explicit PaletteFollower(QChartView* view) : QObject(view), m_view(view) { view->installEventFilter(this); }

    bool eventFilter(QObject* watched, QEvent* event) override
    {
        if (watched == m_view &&
            (event->type() == QEvent::PaletteChange || event->type() == QEvent::ApplicationPaletteChange))
            applyPalette(m_view, m_view->palette());
        return QObject::eventFilter(watched, event);
    }

private:
    QChartView* m_view;
};

} // namespace

void applyPalette(QChartView* view, const QPalette& palette)
{
    QChart* chart = view->chart();
    if (!chart) return;
    const QColor base = palette.color(QPalette::Base), text = palette.color(QPalette::Text);
    const bool dark = base.lightnessF() < 0.5;
    // Grid lines a little off the background, axis lines between the two.
    const QColor grid = dark ? base.lighter(160) : base.darker(112);
    const QColor line = dark ? base.lighter(260) : base.darker(160);
    view->setBackgroundBrush(base); // around the chart, inside the view
    chart->setBackgroundBrush(base);
    chart->setBackgroundPen(Qt::NoPen);
    chart->setPlotAreaBackgroundVisible(false);
    chart->setTitleBrush(text);
    chart->legend()->setLabelColor(text);
    for (QAbstractAxis* axis : chart->axes()) {
        axis->setLabelsColor(text);
        axis->setTitleBrush(text);
        axis->setLinePenColor(line);
        axis->setGridLineColor(grid);
        axis->setMinorGridLineColor(grid);
    }
}

QChartView* makeView(QChart* chart, QWidget* parent)
{
    chart->setMargins(QMargins(2, 2, 2, 2));
    chart->setBackgroundRoundness(0);
    auto* view = new QChartView(chart, parent);
    view->setRenderHint(QPainter::Antialiasing);
    view->setMinimumHeight(110);
    new PaletteFollower(view);
    applyPalette(view, view->palette());
    return view;
}

} // namespace sage::ChartStyle
