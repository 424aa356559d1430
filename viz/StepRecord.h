#pragma once

#include <QList>
#include <QMetaType>
#include <QString>

#include <cstdint>

namespace sage {

// One entry of a token's top alternatives, with the text the tokenizer shows for it.
struct TokenAlternative {
    int32_t token = -1;
    float probability = 0.0f;
    QString text;
};

// A prompt token as the views show it.
struct PromptToken {
    int32_t token = -1;
    QString text; // Tokenizer::pieceText, or the id when the model has no tokenizer
};

// One generated token on the GUI side: the engine's TokenChoice plus display text, resolved on the worker
// thread so that views never touch the tokenizer. Not called StepRecord: that is the engine's trace record
// (engine/capture/TraceStep.h), and two different sage::StepRecord definitions in one program break the
// one-definition rule (their inline destructors are merged by the linker) and cannot share a translation unit.
struct GeneratedStep {
    int32_t token = -1;
    QString text;
    float probability = 0.0f;             // p(token), softmax at temperature 1 after the repetition penalty
    float entropy = 0.0f;                 // nats, same distribution
    float margin = 0.0f;                  // p(top1) - p(top2)
    QList<TokenAlternative> alternatives; // most probable first
};

} // namespace sage

Q_DECLARE_METATYPE(sage::TokenAlternative)
Q_DECLARE_METATYPE(sage::PromptToken)
Q_DECLARE_METATYPE(sage::GeneratedStep)
