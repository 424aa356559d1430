#include "app/workbench/PreferencesDialog.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QGroupBox>
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

    // Explain: which steps count as contested, how many decision points and branches a run explores.
    const ExplainSettings e = settings.explain();
    auto* explainBox = new QGroupBox(tr("Explain (Inverse Reasoning)"), this);
    auto* explainForm = new QFormLayout(explainBox);
    m_entropy = new QDoubleSpinBox(explainBox);
    m_entropy->setObjectName("explainEntropy");
    m_entropy->setRange(0.0, WorkbenchSettings::kMaxEntropyThreshold);
    m_entropy->setDecimals(2);
    m_entropy->setSingleStep(0.1);
    m_entropy->setSuffix(tr(" nats"));
    m_entropy->setValue(e.entropyThreshold);
    m_entropy->setToolTip(tr("A generated step is contested when the entropy of its distribution is at least this "
                             "(or its margin is at most the margin threshold)."));
    explainForm->addRow(tr("Entropy threshold"), m_entropy);
    m_margin = new QDoubleSpinBox(explainBox);
    m_margin->setObjectName("explainMargin");
    m_margin->setRange(0.0, 1.0);
    m_margin->setDecimals(3);
    m_margin->setSingleStep(0.05);
    m_margin->setValue(e.marginThreshold);
    m_margin->setToolTip(tr("A generated step is contested when the probability of its top token exceeds the "
                            "runner-up's by at most this."));
    explainForm->addRow(tr("Margin threshold"), m_margin);
    m_points = new QSpinBox(explainBox);
    m_points->setObjectName("explainPoints");
    m_points->setRange(1, WorkbenchSettings::kMaxDecisionPoints);
    m_points->setValue(e.maxDecisionPoints);
    m_points->setToolTip(tr("At most this many decision points are kept, highest score first."));
    explainForm->addRow(tr("Decision points"), m_points);
    m_branches = new QSpinBox(explainBox);
    m_branches->setObjectName("explainBranches");
    m_branches->setRange(0, WorkbenchSettings::maxBranchesPerPoint());
    m_branches->setValue(e.branchesPerPoint);
    m_branches->setToolTip(tr("Runner-up tokens per decision point that get a counterfactual continuation."));
    explainForm->addRow(tr("Branches per point"), m_branches);
    m_branchLength = new QSpinBox(explainBox);
    m_branchLength->setObjectName("explainBranchLength");
    m_branchLength->setRange(1, WorkbenchSettings::kMaxBranchLength);
    m_branchLength->setSuffix(tr(" tokens"));
    m_branchLength->setValue(e.branchLength);
    m_branchLength->setToolTip(tr("Greedy tokens generated after the forced token of a branch."));
    explainForm->addRow(tr("Branch length"), m_branchLength);
    m_faithfulness =
        new QCheckBox(tr("Faithfulness check (random flips compared with decision-point flips)"), explainBox);
    m_faithfulness->setObjectName("explainFaithfulness");
    m_faithfulness->setChecked(e.faithfulness);
    explainForm->addRow(QString(), m_faithfulness);
    layout->addWidget(explainBox);

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

ExplainSettings PreferencesDialog::explain() const
{
    ExplainSettings e;
    e.entropyThreshold = m_entropy->value();
    e.marginThreshold = m_margin->value();
    e.maxDecisionPoints = m_points->value();
    e.branchesPerPoint = m_branches->value();
    e.branchLength = m_branchLength->value();
    e.faithfulness = m_faithfulness->isChecked();
    return e;
}

void PreferencesDialog::store(WorkbenchSettings& settings) const
{
    settings.setExplain(explain());
    settings.setThreads(threads());
    settings.setTheme(theme());
    settings.setReopenLastModel(reopenLastModel());
    settings.setCapturePolicy(capturePolicy());
}

} // namespace sage
