#include "app/workbench/PreferencesDialog.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QFormLayout>
#include <QSpinBox>
#include <QThread>
#include <QVBoxLayout>

namespace sage {

PreferencesDialog::PreferencesDialog(const WorkbenchSettings& settings, QWidget* parent) : QDialog(parent)
{
    setWindowTitle(tr("Preferences"));
    auto* layout = new QVBoxLayout(this);
    auto* form = new QFormLayout;
    layout->addLayout(form);

    m_threads = new QSpinBox(this);
    m_threads->setRange(0, 1024);
    m_threads->setSpecialValueText(tr("all cores (%1)").arg(QThread::idealThreadCount()));
    m_threads->setValue(settings.threads());
    m_threads->setToolTip(tr("Threads of the CPU backend; applies from the next generation."));
    form->addRow(tr("CPU threads"), m_threads);

    m_theme = new QComboBox(this);
    m_theme->addItem(tr("Light"), "light");
    m_theme->addItem(tr("Dark"), "dark");
    m_theme->setCurrentIndex(settings.theme() == WorkbenchSettings::Theme::Dark ? 1 : 0);
    form->addRow(tr("Theme"), m_theme);

    m_capture = new QComboBox(this);
    m_capture->setObjectName("capturePolicy");
    m_capture->addItem(tr("Off"), "off");
    m_capture->addItem(tr("Summary (gates, norms, lens; no attention rows)"), "summary");
    m_capture->addItem(tr("Standard (+ top-k attention of every head)"), "standard");
    m_capture->addItem(tr("Full (every attention row and logits)"), "full");
    m_capture->setCurrentIndex(std::max(0, m_capture->findData(settings.capturePolicy())));
    m_capture->setToolTip(tr("What the trace of a run keeps; applies from the next generation. Attention maps "
                             "that were not kept are recomputed on demand."));
    form->addRow(tr("Capture"), m_capture);

    m_reopen = new QCheckBox(tr("Reopen the last model at start"), this);
    m_reopen->setChecked(settings.reopenLastModel());
    form->addRow(QString(), m_reopen);

    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
    connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    layout->addWidget(buttons);
}

int PreferencesDialog::threads() const
{
    return m_threads->value();
}

WorkbenchSettings::Theme PreferencesDialog::theme() const
{
    return WorkbenchSettings::themeFromName(m_theme->currentData().toString());
}

bool PreferencesDialog::reopenLastModel() const
{
    return m_reopen->isChecked();
}

QString PreferencesDialog::capturePolicy() const
{
    return m_capture->currentData().toString();
}

void PreferencesDialog::store(WorkbenchSettings& settings) const
{
    settings.setThreads(threads());
    settings.setTheme(theme());
    settings.setReopenLastModel(reopenLastModel());
    settings.setCapturePolicy(capturePolicy());
}

} // namespace sage
