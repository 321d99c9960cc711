// TEMPORARY single-space, single-table stand-ins until the mm/, fs/ and loader work merges.
#include "fs/files.h"
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
namespace k::files {
struct Table { int dummy; };
static Table g_table;
Table* current_table() { return &g_table; }
void set_current_table(Table*) {}
Table* table_fork(Table*) { return nullptr; }
void table_get(Table*) {}
void table_put(Table*) {}
}  // namespace k::files
namespace k::mm {
Space* space_create() { return nullptr; }
}
namespace k::files {
void close_on_exec(Table*) {}
}
