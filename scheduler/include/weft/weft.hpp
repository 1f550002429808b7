// <weft/weft.hpp>: all of weft. Link weft::weft.
//
// Minimal umbrella from the build infrastructure; the runtime replaces it.
#pragma once

#include <weft/io.hpp>
#include <weft/sync.hpp>
#include <weft/version.hpp>
