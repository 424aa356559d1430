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
    // The loaded model's shape, so that the capture selection is checked against it (without one, only the
    // form is checked here; a run checks its model again when it starts).
    void setModelShape(int layers, int heads, int loops, const QString& name);
    // Why the capture selection cannot be used (empty when it can); OK is disabled meanwhile.
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
    int m_modelLayers = 0, m_modelHeads = 0, m_modelLoops = 0; // the loaded model's shape; 0: none given
    QString m_modelName;
    void checkSelection();
    QDoubleSpinBox* m_entropy = nullptr;
    QDoubleSpinBox* m_margin = nullptr;
    QSpinBox* m_points = nullptr;
    QSpinBox* m_branches = nullptr;
    QSpinBox* m_branchLength = nullptr;
    QCheckBox* m_faithfulness = nullptr;
};

} // namespace sage
