// TEMPORARY single-space, single-table stand-ins until the mm/, fs/ and loader work merges.
#include "mm/mm.h"

namespace k::mm {
struct Space { int dummy; };
static Space g_space;
Space* current_space() { return &g_space; }
Space* space_fork(Space*) { return nullptr; }
void space_activate(Space*) {}
void space_get(Space*) {}
void space_put(Space*) {}
}  // namespace k::mm
namespace k::mm {
Space* space_create() { return nullptr; }
}
