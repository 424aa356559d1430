#pragma once

#include "app/workbench/WorkbenchSettings.h"

#include <QDialog>

class QCheckBox;
class QComboBox;
class QSpinBox;

namespace sage {

// Preferences: CPU threads, theme, reopening the last model. The caller applies what changed.
class PreferencesDialog : public QDialog
{
    Q_OBJECT

public:
    explicit PreferencesDialog(const WorkbenchSettings& settings, QWidget* parent = nullptr);

    int threads() const;
    WorkbenchSettings::Theme theme() const;
    bool reopenLastModel() const;
    QString capturePolicy() const;
    // Writes the dialog's values into settings.
    void store(WorkbenchSettings& settings) const;

private:
    QSpinBox* m_threads = nullptr;
    QComboBox* m_theme = nullptr;
    QCheckBox* m_reopen = nullptr;
    QComboBox* m_capture = nullptr;
};

} // namespace sage
