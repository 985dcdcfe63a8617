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

// Instead of deleting `path`, a file of `dir` that nobody will write again
// (a pack a merge took in, its index), keeps its inode for a later spare,
// when keep() was called for `dir` in this process: renames it to a spare's
// name (`tmp_gigafab_spare_<pid>_r<n>`) and returns true. False, and nothing
// done, otherwise, or when enough are kept already: the caller deletes it.
//
// Why: on ext4 without a journal every file created walks the inodes freed
// in the last minute or more (see above), and a busy server deleted about
// as many files as it made, a few per commit; its inode allocations took a
// fifth of its CPU. A kept file is made a spare again only once nobody has
// it open or mapped (a write lease, fcntl F_SETLEASE, is granted: a reader
// of the old pack keeps its bytes); then it is truncated. One still open
// ten seconds later is deleted; so are those beyond 512 kept.
bool recycle(const std::string& dir, const std::string& path);

// Whether the file named `name` (no directory) is a spare kept by a process
// that is still running (one made new or one recycled).
bool is_live_spare(std::string_view name);

}  // namespace gigafab::gitstore::spare_files
