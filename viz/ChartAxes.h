#pragma once

#include <QtGlobal>

class QValueAxis;

namespace sage {

// Axis helpers shared by the trace charts.
namespace ChartAxes {

// Shows positions [first, last] on `axis` with ticks on whole, round positions (1, 2, 5 x 10^k apart), so
// that a tick label names the position under it.
void setPositionRange(QValueAxis* axis, qint64 first, qint64 last);

} // namespace ChartAxes
} // namespace sage
