#pragma once

#include "app/workbench/WorkbenchSettings.h"

#include <QDialog>

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QSpinBox;

namespace sage {

// Preferences: CPU threads, theme, capture policy, reopening the last model, and the Explain (Inverse Reasoning)
// settings of new runs. The caller applies what changed.
class PreferencesDialog : public QDialog
{
    Q_OBJECT

public:
    explicit PreferencesDialog(const WorkbenchSettings& settings, QWidget* parent = nullptr);

    int threads() const;
    WorkbenchSettings::Theme theme() const;
    bool reopenLastModel() const;
    QString capturePolicy() const;
    ExplainSettings explain() const;
    // Writes the dialog's values into settings.
    void store(WorkbenchSettings& settings) const;

private:
    QSpinBox* m_threads = nullptr;
    QComboBox* m_theme = nullptr;
    QCheckBox* m_reopen = nullptr;
    QComboBox* m_capture = nullptr;
    QDoubleSpinBox* m_entropy = nullptr;
    QDoubleSpinBox* m_margin = nullptr;
    QSpinBox* m_points = nullptr;
    QSpinBox* m_branches = nullptr;
    QSpinBox* m_branchLength = nullptr;
    QCheckBox* m_faithfulness = nullptr;
};

} // namespace sage
