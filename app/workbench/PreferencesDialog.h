#pragma once

#include "app/workbench/WorkbenchSettings.h"

#include <QDialog>

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QSpinBox;

namespace sage {

// Preferences: CPU threads, theme, capture policy and selection, reopening the last model, and the Explain
// (Inverse Reasoning) settings of new runs. The caller applies what changed.
class PreferencesDialog : public QDialog
{
    Q_OBJECT

public:
    explicit PreferencesDialog(const WorkbenchSettings& settings, QWidget* parent = nullptr);

    int threads() const;
    WorkbenchSettings::Theme theme() const;
    bool reopenLastModel() const;
    QString capturePolicy() const;
    CaptureSelection captureSelection() const;
    // Why the capture selection cannot be used (empty when it can); OK is disabled meanwhile. Only the form is
    // checked here: numbers against the model are checked when a run starts.
    QString captureSelectionError() const;
    ExplainSettings explain() const;
    // Writes the dialog's values into settings.
    void store(WorkbenchSettings& settings) const;

private:
    QSpinBox* m_threads = nullptr;
    QComboBox* m_theme = nullptr;
    QCheckBox* m_reopen = nullptr;
    QComboBox* m_capture = nullptr;
    QLineEdit* m_loops = nullptr;
    QLineEdit* m_layers = nullptr;
    QLineEdit* m_heads = nullptr;
    QComboBox* m_streams = nullptr;
    QLineEdit* m_fullHeads = nullptr;
    QSpinBox* m_topK = nullptr;
    QSpinBox* m_fullRowMaxKeys = nullptr;
    QLabel* m_selectionError = nullptr;
    QPushButton* m_ok = nullptr;
    void checkSelection();
    QDoubleSpinBox* m_entropy = nullptr;
    QDoubleSpinBox* m_margin = nullptr;
    QSpinBox* m_points = nullptr;
    QSpinBox* m_branches = nullptr;
    QSpinBox* m_branchLength = nullptr;
    QCheckBox* m_faithfulness = nullptr;
};

} // namespace sage
