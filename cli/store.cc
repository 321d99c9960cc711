// `vmfork store gc` and `vmfork store verify` (see store.h).
#include "cli/store.h"

#include <cstdio>

#include "cli/template.h"
#include "cli/util.h"
#include "rootfs/store.h"
#include "snapshot/page_store.h"

namespace vmfork::cli {

void add_store_cli(CLI::App& app, StoreCli* c) {
  c->cmd = app.add_subcommand("store", "Maintain the whole store: templates and root file system images");
  c->cmd->require_subcommand(1);
  c->cmd->add_option("--store", c->store, "store directory (default: $VMFORK_STORE or ~/.local/share/vmfork/store)");
  c->gc = c->cmd->add_subcommand("gc", "Remove what no template or image uses: temp files of interrupted "
                                       "writes, dead frames and packs, memory images of removed templates, "
                                       "unnamed images");
  c->verify = c->cmd->add_subcommand("verify", "Re-read and check every template, its memory image (a damaged "
                                               "one is rebuilt) and every image");
  for (CLI::App* sub : {c->gc, c->verify})
    sub->add_option("--store", c->store, "store directory (default: $VMFORK_STORE or ~/.local/share/vmfork/store)");
}

int run_store_cli(const StoreCli& c) {
  const auto dir = store_dir(c.store);
  auto pages = snapshot::PageStore::open(dir);
  if (!pages.ok()) return fail(pages.error().message());
  auto images = rootfs::Store::open(dir);
  if (!images.ok()) return fail(images.error().message());

  if (*c.gc) {
    auto before = (*pages)->stats();
    if (!before.ok()) return fail(before.error().message());
    if (Status st = (*pages)->reclaim(); !st.ok()) return fail("gc templates: " + st.error().message());
    auto after = (*pages)->stats();
    if (!after.ok()) return fail(after.error().message());
    auto freed = images->gc();
    if (!freed.ok()) return fail("gc rootfs: " + freed.error().message());
    const uint64_t page_freed =
        before->bytes_on_disk > after->bytes_on_disk ? before->bytes_on_disk - after->bytes_on_disk : 0;
    std::printf("templates: %llu bytes freed\nrootfs images: %llu bytes freed\n",
                static_cast<unsigned long long>(page_freed), static_cast<unsigned long long>(*freed));
    return 0;
  }

  // verify: every template and image, reporting each; the exit status says if any failed.
  int bad = 0, good = 0;
  auto names = (*pages)->list();
  if (!names.ok()) return fail(names.error().message());
  for (const auto& n : *names) {
    Status st = (*pages)->verify(n);
    if (st.ok()) {
      std::printf("ok      template %s\n", n.c_str());
      good++;
    } else {
      std::printf("DAMAGED template %s: %s\n", n.c_str(), st.error().message().c_str());
      bad++;
      continue;  // its image cannot be checked against damaged packs
    }
    // The image is a cache: a damaged one is rebuilt from the (verified) packs, so it is
    // reported but does not fail the verify.
    auto img = (*pages)->verify_image(n);
    if (!img.ok()) {
      std::printf("DAMAGED image of template %s: %s\n", n.c_str(), img.error().message().c_str());
      bad++;
    } else if (!img->empty()) {
      std::printf("rebuilt image of template %s: %s\n", n.c_str(), img->c_str());
    }
  }
  auto list = images->list();
  if (!list.ok()) return fail(list.error().message());
  for (const auto& img : *list) {
    Status st = images->verify(img.name);
    if (st.ok()) {
      std::printf("ok      rootfs %s\n", img.name.c_str());
      good++;
    } else {
      std::printf("DAMAGED rootfs %s: %s\n", img.name.c_str(), st.error().message().c_str());
      bad++;
    }
  }
  std::printf("%d ok, %d damaged\n", good, bad);
  return bad ? 1 : 0;
}

}  // namespace vmfork::cli
