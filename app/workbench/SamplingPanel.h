#pragma once

#include "app/workbench/WorkbenchTypes.h"

#include <QWidget>

class QDoubleSpinBox;
class QSpinBox;

namespace sage {

// The sampling controls: max tokens, temperature, top-k, top-p, min-p, repetition penalty, seed, max loops.
class SamplingPanel : public QWidget
{
    Q_OBJECT

public:
    explicit SamplingPanel(QWidget* parent = nullptr);

    GenerationSettings settings() const;
    void setSettings(const GenerationSettings& s);
    // The loop count of the loaded model bounds "max loops" (0 = all).
    void setModelLoops(int loops);

    QSpinBox* maxTokensBox() const { return m_maxTokens; }

signals:
    void changed();

private:
    QSpinBox* m_maxTokens = nullptr;
    QDoubleSpinBox* m_temperature = nullptr;
    QSpinBox* m_topK = nullptr;
    QDoubleSpinBox* m_topP = nullptr;
    QDoubleSpinBox* m_minP = nullptr;
    QDoubleSpinBox* m_repetitionPenalty = nullptr;
    QSpinBox* m_seed = nullptr;
    QSpinBox* m_maxLoops = nullptr;
};

} // namespace sage
