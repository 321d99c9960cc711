// `vmfork rootfs ...` (see rootfs.h).
#include "cli/rootfs.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/template.h"
#include "cli/util.h"
#include "rootfs/store.h"

namespace vmfork::cli {

void add_rootfs_cli(CLI::App& app, RootfsCli* c) {
  c->cmd = app.add_subcommand("rootfs", "Build and manage root file system images (read-only EROFS) in the store");
  c->cmd->require_subcommand(1);
  c->cmd->add_option("--store", c->store, "store directory (default: $VMFORK_STORE or ~/.local/share/vmfork/store)");

  c->create = c->cmd->add_subcommand("create", "Build image NAME from a directory, host files or an OCI image");
  c->create->add_option("name", c->name, "image name ([A-Za-z0-9._-], at most 64)")->required();
  auto* dir = c->create->add_option("--from-dir", c->from_dir, "the whole tree under DIR becomes the image's /");
  auto* host = c->create->add_option("--from-host", c->from_host,
                                     "host files/directories at their own paths, plus the shared libraries of "
                                     "every ELF among them")->expected(1, -1);
  auto* oci = c->create->add_option("--from-oci", c->from_oci, "an OCI image layout directory or a docker save tarball");
  dir->excludes(host)->excludes(oci);
  host->excludes(oci);
  c->create->add_option("--store", c->store, "store directory");
  c->create->add_flag("--json", c->json, "print the image as one JSON object");

  c->ls = c->cmd->add_subcommand("ls", "List the images in the store");
  c->ls->add_option("--store", c->store, "store directory");
  c->ls->add_flag("--json", c->json, "print a JSON array");
  c->inspect = c->cmd->add_subcommand("inspect", "Show an image's hash, size, file count, source and path");
  c->inspect->add_option("name", c->name, "image name")->required();
  c->inspect->add_option("--store", c->store, "store directory");
  c->inspect->add_flag("--json", c->json, "print one JSON object");
  c->rm = c->cmd->add_subcommand("rm", "Remove an image name (the image file goes when no name uses it)");
  c->rm->add_option("name", c->name, "image name")->required();
  c->rm->add_option("--store", c->store, "store directory");
}

namespace {

nlohmann::json to_json(const rootfs::ImageInfo& i) {
  return {{"name", i.name},   {"hash", i.hash},   {"bytes", i.bytes},
          {"files", i.files}, {"source", i.source}, {"created_unix", i.created_unix},
          {"path", i.path.string()}};
}

std::string when(int64_t t) {
  time_t tt = time_t(t);
  tm tmv;
  char b[32];
  strftime(b, sizeof b, "%Y-%m-%d %H:%M:%S", localtime_r(&tt, &tmv));
  return b;
}

void print_json(const nlohmann::json& j) {
  std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

}  // namespace

int run_rootfs_cli(const RootfsCli& c) {
  auto store = rootfs::Store::open(store_dir(c.store));
  if (!store.ok()) return fail(store.error().message());
  if (*c.create) {
    const int sources = !c.from_dir.empty() + !c.from_host.empty() + !c.from_oci.empty();
    if (sources != 1) return fail("rootfs create: give exactly one of --from-dir, --from-host, --from-oci");
    const auto t0 = std::chrono::steady_clock::now();
    auto r = !c.from_dir.empty()    ? store->create_from_dir(c.name, c.from_dir)
             : !c.from_oci.empty() ? store->create_from_oci(c.name, c.from_oci)
                                   : store->create_from_host(c.name, c.from_host);
    if (!r.ok()) return fail(r.error().message());
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (c.json) {
      auto j = to_json(*r);
      j["create_ms"] = ms;
      print_json(j);
    } else {
      std::printf("rootfs %s: %llu files, %.1f MiB, hash %s (%.0f ms)\n", r->name.c_str(),
                  static_cast<unsigned long long>(r->files), double(r->bytes) / (1 << 20), r->hash.c_str(), ms);
    }
    return 0;
  }
  if (*c.ls) {
    auto l = store->list();
    if (!l.ok()) return fail(l.error().message());
    if (c.json) {
      nlohmann::json a = nlohmann::json::array();
      for (const auto& i : *l) a.push_back(to_json(i));
      print_json(a);
    } else {
      for (const auto& i : *l)
        std::printf("%-24s %s %9.1f MiB %8llu files  %s\n", i.name.c_str(), i.hash.substr(0, 12).c_str(),
                    double(i.bytes) / (1 << 20), static_cast<unsigned long long>(i.files), i.source.c_str());
    }
    return 0;
  }
  if (*c.inspect) {
    auto i = store->find(c.name);
    if (!i.ok()) return fail(i.error().message());
    if (c.json) {
      print_json(to_json(*i));
    } else {
      std::printf("rootfs %s\n  hash:    %s\n  bytes:   %llu (%.1f MiB)\n  files:   %llu\n  source:  %s\n"
                  "  created: %s\n  path:    %s\n",
                  i->name.c_str(), i->hash.c_str(), static_cast<unsigned long long>(i->bytes),
                  double(i->bytes) / (1 << 20), static_cast<unsigned long long>(i->files), i->source.c_str(),
                  when(i->created_unix).c_str(), i->path.c_str());
    }
    return 0;
  }
  if (*c.rm) {
    auto s = store->remove(c.name);
    if (!s.ok()) return fail(s.error().message());
    std::printf("removed rootfs %s\n", c.name.c_str());
    return 0;
  }
  return fail("rootfs: no subcommand");
}

}  // namespace vmfork::cli
