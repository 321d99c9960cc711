// Exception and signal names (see fault_names.h).
#include "engine/fault_names.h"

namespace vmfork::engine {

std::string exception_name(uint64_t v) {
  static const char* const names[] = {"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM",
                                      "#DF", "CSO", "#TS", "#NP", "#SS", "#GP", "#PF", "vector 15",
                                      "#MF", "#AC", "#MC", "#XM", "#VE", "#CP"};
  if (v < sizeof names / sizeof names[0]) return names[v];
  return "vector " + std::to_string(v);
}

std::string signal_name(int sig) {
  static const char* const names[] = {"0", "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP",
                                      "SIGABRT", "SIGBUS", "SIGFPE", "SIGKILL", "SIGUSR1", "SIGSEGV",
                                      "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM"};
  if (sig > 0 && sig < int(sizeof names / sizeof names[0])) return names[sig];
  return "signal " + std::to_string(sig);
}

}  // namespace vmfork::engine
