// Fuzzes the capture selection text (applySelection: sage-cli capture's selection options and the workbench's
// capture preferences): a narrowed policy or a SageError, never a crash. Input: the selection's fields, one per
// line (loops, layers, heads, streams, full heads, attention top-k, full-row key limit), applied to the standard
// preset of the 40B shape (80 layers, 40 heads, 2 loops).
#include "FuzzSupport.h"

#include "engine/capture/CapturePolicy.h"
#include "engine/core/SageError.h"
#include "engine/model/ModelConfig.h"

#include <algorithm>
#include <charconv>
#include <string_view>

using namespace sage;

namespace {

int64_t number(std::string_view text)
{
    int64_t v = -1;
    const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
    return r.ec == std::errc() ? v : -1;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    static const ModelConfig config = [] {
        ModelConfig c;
        c.vocabSize = 76800;
        c.hiddenSize = 5120;
        c.numHiddenLayers = 80;
        c.numAttentionHeads = 40;
        c.numKeyValueHeads = 8;
        c.headDim = 128;
        c.loopNum = 2;
        c.loopWindowSize = 64;
        return c;
    }();
    std::string_view in(reinterpret_cast<const char*>(data), size);
    std::string_view fields[7];
    for (std::string_view& f : fields) {
        const size_t nl = in.find('\n');
        f = in.substr(0, nl);
        in = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
    }
    CaptureSelection s;
    s.loops = fields[0];
    s.layers = fields[1];
    s.heads = fields[2];
    s.streams = fields[3];
    s.fullHeads = fields[4];
    const int64_t k = number(fields[5]);
    s.attentionTopK = int(std::clamp<int64_t>(k, -1, 1000000));
    s.fullRowMaxKeys = number(fields[6]);
    CapturePolicy p = CapturePolicy::preset(CapturePreset::Standard, config);
    try {
        applySelection(p, s, config);
        uint64_t sum = p.estimate(config, 64).bytesPerToken + p.name().size();
        for (int64_t loop = 1; loop <= config.loopNum; ++loop)
            for (int64_t L = 0; L < config.numHiddenLayers; ++L) {
                sum += p.layerKinds(config, loop, L);
                for (int64_t h = 0; h < config.numAttentionHeads; ++h) sum += p.headStreams(loop, L, h);
            }
        fuzz::consume(sum);
    } catch (const SageError&) {
    }
    return 0;
}
