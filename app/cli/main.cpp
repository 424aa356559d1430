#include "engine/core/Version.h"

#include <cstdio>

int main()
{
    std::printf("sage-cli %s\n", sage::engineVersion());
    return 0;
}
