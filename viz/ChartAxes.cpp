#include "viz/ChartAxes.h"

#include <QValueAxis>

#include <algorithm>
#include <cmath>

namespace sage::ChartAxes {

void setPositionRange(QValueAxis* axis, qint64 first, qint64 last)
{
    last = std::max(last, first + 1);
    const double span = double(last - first);
    // About six intervals, rounded up to 1, 2 or 5 times a power of ten (at least one position).
    const double raw = std::max(1.0, span / 6.0);
    const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
    double step = magnitude;
    for (double m : {1.0, 2.0, 5.0, 10.0})
        if (m * magnitude >= raw) {
            step = m * magnitude;
            break;
        }
    axis->setRange(double(first), double(last));
    axis->setTickType(QValueAxis::TicksDynamic);
    axis->setTickAnchor(0.0);
    axis->setTickInterval(step);
    axis->setLabelFormat("%d");
}

} // namespace sage::ChartAxes
