#pragma once

class QChart;
class QChartView;
class QPalette;
class QWidget;

namespace sage {

// The look shared by the trace charts, following the application's light or dark theme.
namespace ChartStyle {

// Colours the view and its chart from `palette`: background (Base) around and under the chart, title, legend
// text, and every axis's labels, title, line and grid. Series keep their own colours (experts, heads).
void applyPalette(QChartView* view, const QPalette& palette);

// A view of `chart` (compact margins, antialiased) whose chart is coloured from the view's palette now and
// again whenever that palette changes (a theme switch), with the axes the chart has then.
QChartView* makeView(QChart* chart, QWidget* parent);

} // namespace ChartStyle
} // namespace sage
