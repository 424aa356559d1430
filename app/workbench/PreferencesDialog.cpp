#include "app/workbench/PreferencesDialog.h"

#include "engine/core/SageError.h"
#include "engine/model/ModelConfig.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QGroupBox>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
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

    // The capture selection: narrows the policy (CaptureSelection, docs/capture.md). Nothing outside it is
    // computed during the run.
    const CaptureSelection sel = settings.captureSelection();
    auto* captureBox = new QGroupBox(tr("Capture"), this);
    auto* captureForm = new QFormLayout(captureBox);
    captureForm->addRow(tr("Policy"), m_capture);
    const auto indexField = [&](const char* name, const std::string& value, const QString& tip) {
        auto* e = new QLineEdit(QString::fromStdString(value), captureBox);
        e->setObjectName(name);
        e->setPlaceholderText(tr("all"));
        e->setClearButtonEnabled(true);
        e->setToolTip(tip);
        connect(e, &QLineEdit::textChanged, this, &PreferencesDialog::checkSelection);
        return e;
    };
    m_loops = indexField("captureLoops", sel.loops,
                         tr("Loops to capture, counted from 1: numbers and ranges, e.g. 2 or 1-2."));
    captureForm->addRow(tr("Loops"), m_loops);
    m_layers = indexField("captureLayers", sel.layers,
                          tr("Layers to capture, counted from 0: numbers and ranges, e.g. 0,2-3."));
    captureForm->addRow(tr("Layers"), m_layers);
    m_heads = indexField("captureHeads", sel.heads,
                         tr("Query heads whose attention is kept, counted from 0: numbers and ranges, e.g. 0-3,6."));
    captureForm->addRow(tr("Heads"), m_heads);
    m_streams = new QComboBox(captureBox);
    m_streams->setObjectName("captureStreams");
    m_streams->addItem(tr("As the policy (both)"), QString());
    m_streams->addItem(tr("Global only"), "global");
    m_streams->addItem(tr("Local only (loops 2 and later)"), "local");
    m_streams->setCurrentIndex(std::max(0, m_streams->findData(QString::fromStdString(sel.streams))));
    m_streams->setToolTip(tr("Attention streams kept: the global stream over loop-1 keys, the local sliding window "
                             "(MCH), or both."));
    connect(m_streams, &QComboBox::currentIndexChanged, this, &PreferencesDialog::checkSelection);
    captureForm->addRow(tr("Streams"), m_streams);
    m_fullHeads = indexField("captureFullHeads", sel.fullHeads,
                             tr("Heads that keep full attention rows: none, all, or layer:head pairs such as 0:1,2:3. "
                                "Empty keeps the policy's (standard: the model's mch_heads)."));
    m_fullHeads->setPlaceholderText(tr("as the policy"));
    captureForm->addRow(tr("Full rows of"), m_fullHeads);
    m_topK = new QSpinBox(captureBox);
    m_topK->setObjectName("captureTopK");
    m_topK->setRange(-1, kMaxAttentionTopK);
    m_topK->setSpecialValueText(tr("as the policy"));
    m_topK->setValue(sel.attentionTopK);
    m_topK->setToolTip(tr("Entries kept per attention row of the other heads, with the remaining mass and the "
                          "entropy (0: none)."));
    captureForm->addRow(tr("Top-k entries"), m_topK);
    m_fullRowMaxKeys = new QSpinBox(captureBox);
    m_fullRowMaxKeys->setObjectName("captureFullRowMaxKeys");
    m_fullRowMaxKeys->setRange(-1, int(std::min<int64_t>(WorkbenchSettings::kMaxFullRowKeys, 1 << 30)));
    m_fullRowMaxKeys->setSpecialValueText(tr("as the policy"));
    m_fullRowMaxKeys->setSuffix(tr(" keys"));
    m_fullRowMaxKeys->setValue(int(sel.fullRowMaxKeys));
    m_fullRowMaxKeys->setToolTip(tr("Full rows are kept up to this many keys (0: any length); longer rows keep the "
                                    "top-k summary and are recomputed exactly on demand."));
    captureForm->addRow(tr("Full rows up to"), m_fullRowMaxKeys);
    m_selectionError = new QLabel(captureBox);
    m_selectionError->setObjectName("captureSelectionError");
    m_selectionError->setWordWrap(true);
    m_selectionError->setStyleSheet("color: #c0392b");
    m_selectionError->hide();
    captureForm->addRow(m_selectionError);

    m_reopen = new QCheckBox(tr("Reopen the last model at start"), this);
    m_reopen->setChecked(settings.reopenLastModel());
    form->addRow(QString(), m_reopen);

    // Explain: which steps count as contested, how many decision points and branches a run explores.
    const ExplainSettings e = settings.explain();
    layout->addWidget(captureBox);
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
    m_ok = buttons->button(QDialogButtonBox::Ok);
    checkSelection();
}

CaptureSelection PreferencesDialog::captureSelection() const
{
    CaptureSelection s;
    s.loops = m_loops->text().trimmed().toStdString();
    s.layers = m_layers->text().trimmed().toStdString();
    s.heads = m_heads->text().trimmed().toStdString();
    s.streams = m_streams->currentData().toString().toStdString();
    s.fullHeads = m_fullHeads->text().trimmed().toStdString();
    s.attentionTopK = m_topK->value();
    s.fullRowMaxKeys = m_fullRowMaxKeys->value();
    return s;
}

void PreferencesDialog::setModelShape(int layers, int heads, int loops, const QString& name)
{
    m_modelLayers = layers;
    m_modelHeads = heads;
    m_modelLoops = loops;
    m_modelName = name;
    checkSelection();
}

QString PreferencesDialog::captureSelectionError() const
{
    // Against the loaded model; without one, against a model as large as any, so that only malformed text (and
    // selections that are empty on every model, such as the local stream of loop 1 alone) are errors.
    const bool model = m_modelLayers > 0 && m_modelHeads > 0 && m_modelLoops > 0;
    ModelConfig shape;
    shape.numHiddenLayers = model ? m_modelLayers : 1 << 16;
    shape.numAttentionHeads = model ? m_modelHeads : 1 << 16;
    shape.loopNum = model ? m_modelLoops : 1 << 16;
    CapturePolicy p;
    try {
        applySelection(p, captureSelection(), shape);
    } catch (const SageError& e) {
        const QString message = QString::fromStdString(e.what());
        return model && !m_modelName.isEmpty()
                   ? tr("%1 — checked against the loaded model, %2").arg(message, m_modelName)
                   : message;
    }
    return {};
}

void PreferencesDialog::checkSelection()
{
    const QString error = captureSelectionError();
    m_selectionError->setText(error);
    m_selectionError->setVisible(!error.isEmpty());
    if (m_ok) m_ok->setEnabled(error.isEmpty());
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
    settings.setCaptureSelection(captureSelection());
}

} // namespace sage
