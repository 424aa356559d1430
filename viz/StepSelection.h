#pragma once

#include <QObject>

namespace sage {

// The position every view follows (the "current step"): a sequence position of the RunDocument, or -1.
// Views set it on click and repaint on positionChanged; it is cleared when a new run starts.
class StepSelection : public QObject
{
    Q_OBJECT
    Q_PROPERTY(int position READ position WRITE setPosition NOTIFY positionChanged)

public:
    explicit StepSelection(QObject* parent = nullptr) : QObject(parent) {}

    int position() const { return m_position; }
    bool hasSelection() const { return m_position >= 0; }

public slots:
    void setPosition(int position)
    {
        if (position < 0) position = -1;
        if (position == m_position) return;
        m_position = position;
        emit positionChanged(m_position);
    }
    void clear() { setPosition(-1); }

signals:
    void positionChanged(int position);

private:
    int m_position = -1;
};

} // namespace sage
