// Empty files created ahead of need in a directory, for a long-lived writer
// (gigafab serve) to write its next packs into. Creating a file is the
// slowest part of writing a small pack on ext4 without a journal once files
// have been deleted nearby (the inode allocator skips recently freed inodes:
// 0.1 to 0.7 ms for a commit's pack and index, measured on this project's
// machines, of a 2 ms publish); a spare made by a helper thread meanwhile
// takes that off the path a request waits on.
//
// A spare is named tmp_gigafab_spare_<pid>_XXXXXX, so that whoever cleans
// up what a killed writer left (Store's pack maintenance) leaves the spares
// of a live process alone. They are removed when the process exits normally
// and, once their process is gone, as any other leftover temporary file.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace gigafab::gitstore::spare_files {

// From now on keeps `count` spares ready in `dir` (made on a helper thread as
// they are taken). Idempotent; a larger count raises it.
void keep(const std::string& dir, std::size_t count);

struct Spare {
  int fd;            // open for writing, close-on-exec; the taker closes it
  std::string path;  // its name in the directory
};

// A ready spare of `dir` (keep() was called for it), or nothing: the caller
// creates its file itself. Take it under the store's writer lock, which
// whoever removes leftover files holds too: a spare taken is not removed.
std::optional<Spare> take(const std::string& dir);

// Whether the file named `name` (no directory) is a spare kept by a process
// that is still running.
bool is_live_spare(std::string_view name);

}  // namespace gigafab::gitstore::spare_files
