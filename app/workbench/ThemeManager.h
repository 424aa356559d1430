#pragma once

#include "app/workbench/WorkbenchSettings.h"

namespace sage {

// Applies the light or dark theme to the whole application: the Fusion style with a matching palette, so
// the look is the same on every desktop and views can read lightness from the palette.
class ThemeManager
{
public:
    static void apply(WorkbenchSettings::Theme theme);
};

} // namespace sage
