#pragma once

// Shared helpers for tests that read the golden checkpoints written by tools/reference/make_golden.py.
#include "engine/io/TensorStore.h"

#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QStringList>

#include <cmath>
#include <string>
#include <vector>

struct GoldenCase {
    QString name;
    QString dir;
    std::vector<int32_t> tokens;
    double absTol = 0;
    double relTol = 0;
    std::unique_ptr<sage::TensorStore> golden; // golden.safetensors: logits [T, V], logits_loops1, ...

    std::vector<float> logits(const std::string& tensor) const
    {
        const sage::TensorInfo* t = golden->find(tensor);
        if (!t) return {};
        const float* p = static_cast<const float*>(t->data);
        return std::vector<float>(p, p + t->numel());
    }
};

inline QString goldenRoot()
{
    return QStringLiteral(SAGE_TEST_DATA_DIR) + QStringLiteral("/golden");
}

inline QStringList goldenCaseNames()
{
    return QDir(goldenRoot()).entryList(QDir::Dirs | QDir::NoDotAndDotDot, QDir::Name);
}

inline GoldenCase loadGoldenCase(const QString& name)
{
    GoldenCase g;
    g.name = name;
    g.dir = goldenRoot() + "/" + name;
    QFile f(g.dir + "/golden.json");
    if (!f.open(QIODevice::ReadOnly)) throw std::runtime_error("cannot open " + f.fileName().toStdString());
    const QJsonObject o = QJsonDocument::fromJson(f.readAll()).object();
    for (const auto& v : o.value("tokens").toArray()) g.tokens.push_back(int32_t(v.toInt()));
    g.absTol = o.value("tolerance").toObject().value("abs").toDouble();
    g.relTol = o.value("tolerance").toObject().value("rel").toDouble();
    g.golden = sage::TensorStore::openFile((g.dir + "/golden.safetensors").toStdString());
    return g;
}

// Largest violation of |a - b| <= abs + rel * |b| as a ratio (<= 1 passes), with the worst index.
inline double toleranceRatio(const std::vector<float>& a, const std::vector<float>& b, double absTol, double relTol,
                             size_t* worst = nullptr)
{
    double r = a.size() == b.size() ? 0.0 : INFINITY;
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
        const double lim = absTol + relTol * std::fabs(double(b[i]));
        const double q = std::fabs(double(a[i]) - double(b[i])) / lim;
        if (!(q <= r)) {
            r = q;
            if (worst) *worst = i;
        }
    }
    return r;
}
