// `vmfork template ...` (see cli_template.h).
#include "cli/template.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/util.h"
#include "rootfs/store.h"
#include "engine/cold_run.h"
#include "engine/template.h"
#include "engine/template_meta.h"
#include "engine/units.h"
#include "snapshot/page_store.h"

namespace vmfork::cli {

using namespace vmfork::engine;

std::filesystem::path store_dir(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* s = getenv("VMFORK_STORE"); s && *s) return s;
  if (const char* x = getenv("XDG_DATA_HOME"); x && *x) return std::filesystem::path(x) / "vmfork" / "store";
  const char* home = getenv("HOME");
  return std::filesystem::path(home && *home ? home : "/tmp") / ".local" / "share" / "vmfork" / "store";
}

void add_template_cli(CLI::App& app, TemplateCli* c) {
  c->cmd = app.add_subcommand("template", "Create and manage templates in the page store");
  c->cmd->require_subcommand(1);
  c->cmd->add_option("--store", c->store, "store directory (default: $VMFORK_STORE or ~/.local/share/vmfork/store)");

  c->create = c->cmd->add_subcommand("create", "Boot the guest once and freeze it as template NAME");
  c->create->add_option("name", c->name, "template name ([A-Za-z0-9._-], at most 64)")->required();
  c->create->add_option("--accel", c->accel, "auto|native|emulated|hardware")->capture_default_str();
  c->create->add_option("--mem", c->mem, "guest memory size (e.g. 256M, 2G)")->capture_default_str();
  c->create->add_option("--timeout", c->timeout, "limit from boot to the freeze point")->capture_default_str();
  c->create->add_option("--stack", c->stack, "job stack size (RLIMIT_STACK)")->capture_default_str();
  c->create->add_option("--env", c->envs, "KEY=VALUE for the program's environment (repeatable)");
  c->create->add_flag("--irqchip", c->irqchip, "give the VM an in-kernel irqchip and PIT");
  c->create->add_option("--rootfs", c->rootfs, "root file system NAME (vmfork rootfs create); PROGRAM is a path in it");
  c->create->add_option("--runtime", c->runtime,
                        "a warm runtime vmfork ships (python3): its runner starts, preloads, and waits for jobs");
  c->create->add_flag("--wait-for-job", c->wait_for_job,
                      "freeze when PROGRAM opens /dev/vmfork/job (a runtime of your own; docs/runtimes.md)");
  c->create->add_flag("--verbose", c->verbose, "show the guest kernel's serial log");
  c->create->add_flag("--json", c->json, "print the result as one JSON object");
  c->create->add_option("command", c->command,
                        "PROGRAM [ARGS...] (after --): freeze when it first waits for stdin; "
                        "without one, freeze once the kernel is ready for a job");

  c->ls = c->cmd->add_subcommand("ls", "List the templates in the store");
  c->ls->add_flag("--json", c->json, "print a JSON array");
  c->inspect = c->cmd->add_subcommand("inspect", "Show a template's pages, sharing and size on disk");
  c->inspect->add_option("name", c->name, "template name")->required();
  c->inspect->add_flag("--json", c->json, "print one JSON object");
  c->verify = c->cmd->add_subcommand("verify", "Re-read and re-hash every page of a template");
  c->verify->add_option("name", c->name, "template name")->required();
  c->rm = c->cmd->add_subcommand("rm", "Remove a template and reclaim pages no other template uses");
  c->rm->add_option("name", c->name, "template name")->required();
}

namespace {

// Progress of long steps on stderr: one line when a step starts and when it ends, and on a
// terminal a running count in between.
snapshot::Progress progress_printer() {
  struct State {
    std::string step;
    bool tty = isatty(STDERR_FILENO);
  };
  auto st = std::make_shared<State>();
  return [st](std::string_view step, uint64_t done, uint64_t total) {
    if (step != st->step) {
      st->step = std::string(step);
      std::fprintf(stderr, "vmfork: %.*s...\n", int(step.size()), step.data());
    } else if (done == total) {
      std::fprintf(stderr, "%svmfork: %.*s: done (%llu)\n", st->tty ? "\r\033[K" : "", int(step.size()),
                   step.data(), static_cast<unsigned long long>(total));
    } else if (st->tty) {
      std::fprintf(stderr, "\r\033[Kvmfork: %.*s: %llu/%llu", int(step.size()), step.data(),
                   static_cast<unsigned long long>(done), static_cast<unsigned long long>(total));
    }
  };
}

std::string mib(uint64_t bytes) {
  char b[32];
  snprintf(b, sizeof b, "%.1f MiB", double(bytes) / (1 << 20));
  return b;
}

int create(const TemplateCli& c, snapshot::PageStore& store) {
  TemplateSpec spec;
  spec.name = c.name;
  auto req = vmm::parse_accel(c.accel);
  if (!req.ok()) return fail(req.error().message());
  spec.accel = *req;
  auto mem = parse_size(c.mem);
  if (!mem.ok()) return fail("--mem: " + mem.error().message());
  spec.mem_bytes = *mem;
  auto stack = parse_size(c.stack);
  if (!stack.ok()) return fail("--stack: " + stack.error().message());
  spec.stack_bytes = *stack;
  auto t = parse_duration(c.timeout);
  if (!t.ok()) return fail("--timeout: " + t.error().message());
  spec.timeout = *t;
  spec.verbose = c.verbose;
  spec.irqchip = c.irqchip;
  if (!c.runtime.empty() && !c.command.empty()) return fail("--runtime brings its own program: give no PROGRAM");
  if ((!c.runtime.empty() || c.wait_for_job) && c.rootfs.empty()) return fail("a runtime template needs --rootfs");
  if (!c.rootfs.empty()) {
    auto rstore = rootfs::Store::open(store.dir());
    if (!rstore.ok()) return fail(rstore.error().message());
    auto img = rstore->find(c.rootfs);
    if (!img.ok()) return fail(img.error().message());
    use_rootfs(&spec, *img);
  }
  std::vector<std::string> command = c.command;
  if (!c.runtime.empty()) {
    Status rt = use_runtime(&spec, c.runtime);
    if (!rt.ok()) return fail(rt.error().message());
    command = spec.argv;
  }
  spec.wait_for_job = spec.wait_for_job || c.wait_for_job;
  if (!command.empty()) {
    if (spec.program.empty()) spec.program = c.rootfs.empty() ? resolve_program(command[0]) : command[0];
    spec.argv = command;
    spec.env = default_env();
    for (auto& e : c.envs) {
      if (e.find('=') == std::string::npos) return fail("--env wants KEY=VALUE, got '" + e + "'");
      spec.env.push_back(e);
    }
  }
  auto r = create_template(spec, store, c.json ? snapshot::Progress{} : progress_printer());
  if (!r.ok()) return fail(r.error().message());
  const auto& p = r->put;
  if (c.json) {
    nlohmann::json j = {
        {"name", c.name}, {"freeze_point", freeze_point_name(r->point)}, {"accel", r->accel},
        {"pages_total", p.pages_total}, {"pages_zero", p.pages_zero}, {"pages_new", p.pages_new},
        {"pages_deduped", p.pages_deduped}, {"frames_written", p.frames_written},
        {"pack_bytes", p.pack_bytes}, {"manifest_bytes", p.manifest_bytes},
        {"boot_us", r->boot_us}, {"save_us", r->save_us}, {"store_us", r->store_us}, {"total_us", r->total_us},
        {"image_us", r->image_us}, {"image_error", r->image_error.empty() ? nlohmann::json(nullptr) : nlohmann::json(r->image_error)}};
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    std::printf("template %s: frozen at %s (%s mode) after %.1f ms\n", c.name.c_str(), freeze_point_name(r->point),
                r->accel.c_str(), r->boot_us / 1000);
    std::printf("  pages: %llu total, %llu zero, %llu new, %llu already in the store\n",
                static_cast<unsigned long long>(p.pages_total), static_cast<unsigned long long>(p.pages_zero),
                static_cast<unsigned long long>(p.pages_new), static_cast<unsigned long long>(p.pages_deduped));
    std::printf("  written: %s in %llu frames + %llu-byte manifest; store step %.1f ms\n", mib(p.pack_bytes).c_str(),
                static_cast<unsigned long long>(p.frames_written), static_cast<unsigned long long>(p.manifest_bytes),
                r->store_us / 1000);
    if (r->image_error.empty())
      std::printf("  memory image: built in %.1f ms\n", r->image_us / 1000);
    else
      std::fprintf(stderr, "vmfork: warning: memory image not built (clones will build it): %s\n",
                   r->image_error.c_str());
  }
  return 0;
}

int inspect(const TemplateCli& c, snapshot::PageStore& store) {
  auto t = store.load(c.name);
  if (!t.ok()) return fail(t.error().message());
  auto s = store.inspect(c.name);
  if (!s.ok()) return fail(s.error().message());
  // The metadata is data from disk: show it only once it has been validated.
  auto meta = meta_from_json(t->metadata_json());
  if (c.json) {
    nlohmann::json j = {{"name", c.name},
                        {"created_unix_ns", t->created_unix_ns()},
                        {"mem_bytes", t->mem_bytes()},
                        {"pages_total", s->pages_total},
                        {"pages_zero", s->pages_zero},
                        {"pages_unique", s->pages_unique},
                        {"pages_shared", s->pages_shared},
                        {"frames", s->frames},
                        {"bytes_on_disk", s->bytes_on_disk},
                        {"bytes_stored_uncompressed", s->bytes_stored_uncompressed},
                        {"compression_ratio", s->compression_ratio},
                        {"metadata", meta.ok() ? nlohmann::json::parse(meta_to_json(*meta)) : nlohmann::json()}};
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return 0;
  }
  std::printf("template %s\n", c.name.c_str());
  if (meta.ok()) {
    std::printf("  freeze point: %s, accel %s, memory %s\n", meta->freeze_point.c_str(),
                vmm::accel_name(meta->accel), mib(t->mem_bytes()).c_str());
    std::string argv;
    for (const auto& a : meta->argv) argv += (argv.empty() ? "" : " ") + a;
    if (!argv.empty()) std::printf("  program: %s\n", argv.c_str());
  } else {
    std::printf("  metadata: invalid (%s)\n", meta.error().message().c_str());
  }
  std::printf("  pages: %llu total, %llu zero, %llu unique, %llu shared with other templates\n",
              static_cast<unsigned long long>(s->pages_total), static_cast<unsigned long long>(s->pages_zero),
              static_cast<unsigned long long>(s->pages_unique), static_cast<unsigned long long>(s->pages_shared));
  std::printf("  on disk: %s in %llu frames (stored pages %s uncompressed, ratio %.2f)\n",
              mib(s->bytes_on_disk).c_str(), static_cast<unsigned long long>(s->frames),
              mib(s->bytes_stored_uncompressed).c_str(), s->compression_ratio);
  return 0;
}

}  // namespace

int run_template_cli(const TemplateCli& c) {
  auto store = snapshot::PageStore::open(store_dir(c.store));
  if (!store.ok()) return fail(store.error().message());
  snapshot::PageStore& s = **store;
  if (*c.create) return create(c, s);
  if (*c.inspect) return inspect(c, s);
  if (*c.ls) {
    auto names = s.list();
    if (!names.ok()) return fail(names.error().message());
    if (c.json) std::cout << nlohmann::json(*names).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    else for (auto& n : *names) std::printf("%s\n", n.c_str());
    return 0;
  }
  if (*c.verify) {
    auto v = s.verify(c.name, progress_printer());
    if (!v.ok()) return fail("verify " + c.name + ": " + v.error().message());
    std::printf("template %s: every page verified\n", c.name.c_str());
    return 0;
  }
  if (*c.rm) {
    auto before = s.stats();
    auto r = s.remove(c.name);
    if (!r.ok()) return fail(r.error().message());
    auto after = s.stats();
    if (before.ok() && after.ok())
      std::printf("removed %s; store %s -> %s on disk\n", c.name.c_str(), mib(before->bytes_on_disk).c_str(),
                  mib(after->bytes_on_disk).c_str());
    return 0;
  }
  return fail("template: no subcommand");
}

}  // namespace vmfork::cli
