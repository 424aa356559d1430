#pragma once

#include "app/workbench/WorkbenchTypes.h"

#include <QWidget>

class QLabel;
class QFormLayout;

namespace sage {

// The loaded model at a glance: architecture, size, dtype, layers, loops, window, experts, memory.
class ModelSummaryPanel : public QWidget
{
    Q_OBJECT

public:
    explicit ModelSummaryPanel(QWidget* parent = nullptr);

    void setSummary(const ModelSummary& summary);
    void clear();
    // The value shown for a field label ("Layers"), for tests; empty when absent.
    QString value(const QString& field) const;

    static QString formatBytes(double bytes);
    static QString formatCount(qint64 n); // 1.23 B, 45.6 M, 7.8 K

private:
    void setRows(const QList<QPair<QString, QString>>& rows);

    QFormLayout* m_form = nullptr;
    QLabel* m_empty = nullptr;
    QList<QPair<QString, QLabel*>> m_values;
};

} // namespace sage
