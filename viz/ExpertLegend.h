#pragma once

#include <QWidget>

namespace sage {

// The key of the routing grid: one colour swatch per expert ("E0", "E1", ...), wrapped onto as many lines as
// the width needs.
class ExpertLegend : public QWidget
{
    Q_OBJECT

public:
    explicit ExpertLegend(QWidget* parent = nullptr);

    void setExpertCount(int experts);
    int expertCount() const { return m_experts; }
    // The swatch of an expert in widget coordinates (empty when out of range).
    QRect swatchRect(int expert) const;

    QSize sizeHint() const override;
    bool hasHeightForWidth() const override { return true; }
    int heightForWidth(int width) const override;

protected:
    void paintEvent(QPaintEvent* event) override;

private:
    int itemWidth() const;
    int perLine(int width) const;

    int m_experts = 0;
};

} // namespace sage
