#include "engine/core/Version.h"

namespace sage {

const char* engineVersion()
{
    return SAGE_VERSION;
}

} // namespace sage
