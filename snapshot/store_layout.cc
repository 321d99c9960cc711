// The page store's directory listing helpers.
#include "snapshot/store_layout.h"

#include <dirent.h>

#include <algorithm>
#include <cerrno>

#include "snapshot/manifest.h"

namespace vmfork::snapshot {

Result<std::vector<std::string>> list_dir(const std::filesystem::path& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return errno_error("opendir " + dir.string());
  std::vector<std::string> names;
  errno = 0;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  int err = errno;
  ::closedir(d);
  if (err) return Error{"readdir " + dir.string(), err};
  std::sort(names.begin(), names.end());
  return names;
}

std::string template_of(std::string_view file_name) {
  if (!file_name.ends_with(".vft")) return {};
  std::string name(file_name.substr(0, file_name.size() - 4));
  return check_template_name(name).ok() ? name : std::string();
}

}  // namespace vmfork::snapshot
