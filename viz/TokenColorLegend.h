#pragma once

#include "viz/TokenColors.h"

#include <QWidget>

namespace sage {

// A small colour ramp with its meaning ("p 0 … 1" or "entropy high … low") for the token stream header.
class TokenColorLegend : public QWidget
{
    Q_OBJECT

public:
    explicit TokenColorLegend(QWidget* parent = nullptr);

    void setMode(TokenColors::Mode mode);
    TokenColors::Mode mode() const { return m_mode; }
    QSize sizeHint() const override;

protected:
    void paintEvent(QPaintEvent* event) override;

private:
    QString lowText() const;
    QString highText() const;

    TokenColors::Mode m_mode = TokenColors::Mode::Probability;
};

} // namespace sage
