// Crash safety of session saving: a writer process (helpers/session_writer.cpp, the engine's SessionFile
// and Autosaver) is killed with SIGKILL at varied moments during save and during autosave. After every
// kill, the session file must be byte-identical to a complete version (the previous one or a newer one),
// never a mix or a truncation, and the next save must succeed and clean up what the killed writer left.
#include "CrashSessions.h"

#include "engine/capture/SessionFile.h"
#include "engine/capture/Trace.h"
#include "engine/core/SageError.h"

#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include <csignal>
#include <filesystem>
#include <fstream>

using namespace sage;
namespace fs = std::filesystem;

namespace {

std::string readAll(const fs::path& p)
{
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

int countTemporaries(const fs::path& dir)
{
    int n = 0;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().filename().string().find(".tmp-") != std::string::npos) ++n;
    return n;
}

} // namespace

class TestCrashSafety : public QObject
{
    Q_OBJECT

private slots:
    void killDuringSave_data()
    {
        QTest::addColumn<QString>("mode");
        QTest::newRow("save") << "save";
        QTest::newRow("autosave") << "autosave";
    }

    void killDuringSave()
    {
        QFETCH(QString, mode);
        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        const fs::path dir = tmp.path().toStdString();
        const fs::path file = dir / "run.sagetrace";
        // The previous session: version (0, 3).
        {
            Trace t;
            crashtest::fill(t, 0, 3);
            SessionFile::save(file, crashtest::meta(0), t);
        }
        QCOMPARE(readAll(file), crashtest::bytes(0, 3));

        int killedWithTemporary = 0, sawNewVersion = 0;
        const int kRuns = 16;
        for (int run = 0; run < kRuns; ++run) {
            QProcess writer;
            writer.start(QStringLiteral(SAGE_SESSION_WRITER_PATH), {mode, QString::fromStdString(file.string())});
            QVERIFY(writer.waitForStarted(10000));
            QVERIFY(writer.waitForReadyRead(10000));
            QCOMPARE(writer.readLine().trimmed(), QByteArray("ready"));
            // Delays from 0 to ~150 ms in uneven steps, so kills land before, inside and between saves.
            QTest::qWait((run * 37) % 151);
            ::kill(pid_t(writer.processId()), SIGKILL);
            QVERIFY(writer.waitForFinished(10000));
            QCOMPARE(writer.exitStatus(), QProcess::CrashExit);
            if (countTemporaries(dir) > 0) ++killedWithTemporary;

            // The file opens, and its bytes are exactly those of the version it claims to be.
            Trace t;
            const SessionMeta m = SessionFile::open(file, t);
            const int64_t round = int64_t(m.sampling.seed), steps = t.size();
            QVERIFY2(steps >= 1 && steps <= 4, qPrintable(QString::number(steps)));
            const std::string expected = crashtest::bytes(round, steps);
            QVERIFY2(readAll(file) == expected,
                     qPrintable(QString("run %1: file differs from version (%2, %3)").arg(run).arg(round).arg(steps)));
            if (round != 0) ++sawNewVersion;
        }
        // The next save works despite what the killed writers left, and removes their temporary files.
        Trace t;
        crashtest::fill(t, 99, 1);
        SessionFile::save(file, crashtest::meta(99), t);
        QCOMPARE(readAll(file), crashtest::bytes(99, 1));
        QCOMPARE(countTemporaries(dir), 0);
        qInfo("%s: %d runs, %d left a temporary file (killed mid-write), %d found a newer version", qPrintable(mode),
              kRuns, killedWithTemporary, sawNewVersion);
    }

    void staleTemporariesOfLiveProcessesAreKept()
    {
        QTemporaryDir tmp;
        const fs::path dir = tmp.path().toStdString();
        const fs::path file = dir / "s.sagetrace";
        // pid 1 is always alive: a concurrent writer's temporary must survive; a dead pid's is removed.
        std::ofstream(dir / ".s.sagetrace.tmp-1-123") << "partial";
        std::ofstream(dir / ".s.sagetrace.tmp-999999999-5") << "partial";
        std::ofstream(dir / ".other.sagetrace.tmp-999999999-5") << "not ours";
        Trace t;
        crashtest::fill(t, 1, 1);
        SessionFile::save(file, crashtest::meta(1), t);
        QVERIFY(fs::exists(dir / ".s.sagetrace.tmp-1-123"));
        QVERIFY(!fs::exists(dir / ".s.sagetrace.tmp-999999999-5"));
        QVERIFY(fs::exists(dir / ".other.sagetrace.tmp-999999999-5"));
    }
};

QTEST_APPLESS_MAIN(TestCrashSafety)
#include "tst_crashsafety.moc"
