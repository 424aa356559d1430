#include "app/workbench/SamplingPanel.h"

#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QSpinBox>

namespace sage {

namespace {
QDoubleSpinBox* doubleBox(QWidget* parent, double lo, double hi, double step, int decimals)
{
    auto* box = new QDoubleSpinBox(parent);
    box->setRange(lo, hi);
    box->setSingleStep(step);
    box->setDecimals(decimals);
    return box;
}
} // namespace

SamplingPanel::SamplingPanel(QWidget* parent) : QWidget(parent)
{
    auto* form = new QFormLayout(this);
    form->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);

    m_maxTokens = new QSpinBox(this);
    m_maxTokens->setRange(1, 1 << 20);
    m_maxTokens->setToolTip(tr("Generation stops after this many tokens (or at end of sequence)."));
    form->addRow(tr("Max tokens"), m_maxTokens);

    m_temperature = doubleBox(this, 0.0, 100.0, 0.05, 2);
    m_temperature->setSpecialValueText(tr("0 (greedy)"));
    form->addRow(tr("Temperature"), m_temperature);

    m_topK = new QSpinBox(this);
    m_topK->setRange(0, 1 << 20);
    m_topK->setSpecialValueText(tr("off"));
    form->addRow(tr("Top-k"), m_topK);

    m_topP = doubleBox(this, 0.01, 1.0, 0.05, 2);
    m_topP->setToolTip(tr("1 = off"));
    form->addRow(tr("Top-p"), m_topP);

    m_minP = doubleBox(this, 0.0, 1.0, 0.01, 3);
    m_minP->setSpecialValueText(tr("off"));
    form->addRow(tr("Min-p"), m_minP);

    m_repetitionPenalty = doubleBox(this, 0.01, 100.0, 0.05, 2);
    m_repetitionPenalty->setToolTip(tr("1 = off"));
    form->addRow(tr("Repetition penalty"), m_repetitionPenalty);

    m_seed = new QSpinBox(this);
    m_seed->setRange(0, std::numeric_limits<int>::max());
    form->addRow(tr("Seed"), m_seed);

    m_maxLoops = new QSpinBox(this);
    m_maxLoops->setRange(0, 1);
    m_maxLoops->setSpecialValueText(tr("all"));
    m_maxLoops->setToolTip(tr("Run only the first N loops, then the final norm and head (early exit)."));
    form->addRow(tr("Max loops"), m_maxLoops);

    for (QSpinBox* b : {m_maxTokens, m_topK, m_seed, m_maxLoops})
        connect(b, &QSpinBox::valueChanged, this, &SamplingPanel::changed);
    for (QDoubleSpinBox* b : {m_temperature, m_topP, m_minP, m_repetitionPenalty})
        connect(b, &QDoubleSpinBox::valueChanged, this, &SamplingPanel::changed);
    setSettings(GenerationSettings{});
}

GenerationSettings SamplingPanel::settings() const
{
    GenerationSettings s;
    s.maxTokens = m_maxTokens->value();
    s.temperature = m_temperature->value();
    s.topK = m_topK->value();
    s.topP = m_topP->value();
    s.minP = m_minP->value();
    s.repetitionPenalty = m_repetitionPenalty->value();
    s.seed = quint64(m_seed->value());
    s.maxLoops = m_maxLoops->value();
    return s;
}

void SamplingPanel::setSettings(const GenerationSettings& s)
{
    m_maxTokens->setValue(s.maxTokens);
    m_temperature->setValue(s.temperature);
    m_topK->setValue(s.topK);
    m_topP->setValue(s.topP);
    m_minP->setValue(s.minP);
    m_repetitionPenalty->setValue(s.repetitionPenalty);
    m_seed->setValue(int(std::min<quint64>(s.seed, quint64(std::numeric_limits<int>::max()))));
    if (s.maxLoops > m_maxLoops->maximum()) m_maxLoops->setMaximum(s.maxLoops);
    m_maxLoops->setValue(s.maxLoops);
}

void SamplingPanel::setModelLoops(int loops)
{
    m_maxLoops->setMaximum(std::max(1, loops));
}

} // namespace sage
