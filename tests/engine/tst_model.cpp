// Loading model folders: configs that disagree with the tensors, malformed config files, and the
// model-level facts (eos ids, tokenizer absence) that the CLI and the workbench rely on.
#include "GoldenCase.h"

#include "engine/core/SageError.h"
#include "engine/model/Model.h"
#include "engine/model/ModelConfig.h"

#include <QTemporaryDir>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

using namespace sage;
namespace fs = std::filesystem;

class TestModel : public QObject
{
    Q_OBJECT

    // Copies a golden checkpoint into a temporary folder and applies `edit` to its config.json.
    static fs::path copyWithConfig(const QTemporaryDir& tmp, const QString& caseName,
                                   const std::function<void(nlohmann::json&)>& edit)
    {
        const fs::path src = (goldenRoot() + "/" + caseName).toStdString();
        const fs::path dst = fs::path(tmp.path().toStdString()) / caseName.toStdString();
        fs::create_directories(dst);
        for (const auto& e : fs::directory_iterator(src))
            if (e.path().filename() != "golden.safetensors") fs::copy(e.path(), dst / e.path().filename());
        std::ifstream in(dst / "config.json");
        nlohmann::json j = nlohmann::json::parse(in);
        in.close();
        edit(j);
        std::ofstream(dst / "config.json") << j.dump(2);
        return dst;
    }

    static QString loadError(const fs::path& dir)
    {
        try {
            Model::load(dir);
        } catch (const SageError& e) {
            return QString::fromStdString(e.what());
        }
        return {};
    }

    static void expectError(const fs::path& dir, const QStringList& parts)
    {
        const QString msg = loadError(dir);
        QVERIFY2(!msg.isEmpty(), "expected a load error");
        for (const QString& p : parts) QVERIFY2(msg.contains(p), qPrintable("message lacks '" + p + "': " + msg));
    }

private slots:
    void goldenModelsLoad()
    {
        for (const QString& name : goldenCaseNames()) {
            auto m = Model::load((goldenRoot() + "/" + name).toStdString());
            QVERIFY(m->config().numHiddenLayers > 0);
            QVERIFY(m->tokenizer() == nullptr); // token ids work without a tokenizer
            QVERIFY(m->weightBytes() > 0);
        }
    }

    void shapeMismatchNamesTensorAndShapes()
    {
        QTemporaryDir tmp;
        // Twice as many KV heads as stored: k_proj has half the rows the config implies.
        const auto dir = copyWithConfig(tmp, "loop2_gqa4", [](nlohmann::json& j) {
            j["num_key_value_heads"] = j["num_key_value_heads"].get<int>() * 2;
        });
        expectError(dir, {"model.layers.0.self_attn.k_proj.weight", "has shape", "config.json implies"});
    }

    void moreLayersThanStoredIsAMissingTensor()
    {
        QTemporaryDir tmp;
        const auto dir = copyWithConfig(tmp, "loop2_dense_w4", [](nlohmann::json& j) {
            j["num_hidden_layers"] = j["num_hidden_layers"].get<int>() + 1;
        });
        expectError(dir, {"is missing", "model.layers."});
    }

    void fewerLayersOrLoopsThanStoredIsRejected()
    {
        QTemporaryDir tmp;
        auto dir = copyWithConfig(tmp, "loop2_dense_w4", [](nlohmann::json& j) {
            j["num_hidden_layers"] = 1;
            j.erase("mch_heads");
        });
        expectError(dir, {".1.", "is not used", "num_hidden_layers 1"});
        QTemporaryDir tmp2;
        dir = copyWithConfig(tmp2, "loop2_dense_w4", [](nlohmann::json& j) { j.erase("loop_num"); });
        expectError(dir, {"model.gate_projections.0", "loop_num 1"});
    }

    void moeConfigWithoutExpertsIsRejected()
    {
        QTemporaryDir tmp;
        const auto dir = copyWithConfig(tmp, "loop2_moe", [](nlohmann::json& j) { j["num_experts"] = 8; });
        expectError(dir, {"model.layers.0.mlp.gate.weight", "[4, 32]", "[8, 32]"});
    }

    void malformedConfigFields()
    {
        struct Case {
            std::function<void(nlohmann::json&)> edit;
            QStringList parts;
        };
        const std::vector<Case> cases = {
            {[](nlohmann::json& j) { j.erase("hidden_size"); }, {"config.json", "hidden_size", "missing"}},
            {[](nlohmann::json& j) { j["vocab_size"] = "many"; }, {"vocab_size", "must be an integer"}},
            {[](nlohmann::json& j) { j["num_attention_heads"] = -4; }, {"num_attention_heads", ">= 1"}},
            {[](nlohmann::json& j) { j["num_key_value_heads"] = 3; }, {"num_key_value_heads", "must divide"}},
            {[](nlohmann::json& j) { j["model_type"] = "gpt2"; }, {"model_type", "gpt2", "supported"}},
            {[](nlohmann::json& j) { j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 2}}; },
             {"rope_scaling", "yarn"}},
            {[](nlohmann::json& j) { j["mch_heads"] = {{0, 99}}; }, {"mch_heads", "[0,99]"}},
            {[](nlohmann::json& j) { j["eos_token_id"] = {2, "x"}; }, {"eos_token_id", "list of integers"}},
            {[](nlohmann::json& j) { j["eos_token_id"] = 100000; }, {"eos_token_id 100000", "outside the vocabulary"}},
            {[](nlohmann::json& j) { j["attention_bias"] = true; }, {"attention_bias"}},
        };
        for (size_t i = 0; i < cases.size(); ++i) {
            QTemporaryDir tmp;
            expectError(copyWithConfig(tmp, "loop2_gqa4", cases[i].edit), cases[i].parts);
        }
    }

    void unreadableFiles()
    {
        QTemporaryDir tmp;
        const fs::path dir = tmp.path().toStdString();
        expectError(dir / "nothing-here", {"is not a folder"});
        expectError(dir, {"config.json", "not found"});
        std::ofstream(dir / "config.json") << "{\"vocab_size\": 10,";
        expectError(dir, {"config.json", "not valid JSON"});
        std::ofstream(dir / "config.json") << "[1, 2]";
        expectError(dir, {"config.json", "JSON object"});
        QTemporaryDir tmp2;
        const auto good = copyWithConfig(tmp2, "loop2_dense_w4", [](nlohmann::json&) {});
        fs::remove(good / "model.safetensors");
        expectError(good, {"model.safetensors"});
    }

    void generationConfigOverridesEos()
    {
        // Cases with generation_config.json: its eos ids replace config.json's.
        int found = 0;
        for (const QString& name : goldenCaseNames()) {
            const fs::path dir = (goldenRoot() + "/" + name).toStdString();
            if (!fs::exists(dir / "generation_config.json")) continue;
            ++found;
            auto m = Model::load(dir);
            const GenerationConfig gc = GenerationConfig::load(dir);
            if (!gc.eosTokenIds.empty()) QVERIFY(m->eosTokenIds() == gc.eosTokenIds);
        }
        QVERIFY(found >= 1);
    }

    void parameterCountMatchesTensors()
    {
        for (const QString& name : goldenCaseNames()) {
            auto m = Model::load((goldenRoot() + "/" + name).toStdString());
            int64_t stored = 0;
            for (const std::string& t : m->tensors().names()) stored += m->tensors().get(t).numel();
            QCOMPARE(m->config().parameterCount(), stored);
        }
    }
};

QTEST_APPLESS_MAIN(TestModel)
#include "tst_model.moc"
