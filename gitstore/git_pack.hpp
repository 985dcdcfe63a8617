// The pack a gc writes, built by git's own `git pack-objects` when a git is
// installed. Its delta search pairs the store's small trees and blobs better
// than libgit2's packbuilder does: 969 against 1,105 bytes per transition on
// the bench's store, where the target is 1 KiB. Without a git (or with
// GIGAFAB_GIT set to "none") the gc packs with libgit2 as before.
#pragma once

#include <git2.h>

#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace gigafab::gitstore {

// An object to pack and the name of the tree entry it was found under ("" for
// commits): the delta search compares objects of one name first.
struct NamedObject {
  git_oid id;
  std::string name;
};

// The git program to run: GIGAFAB_GIT when set ("none": never), else "git"
// when it is on PATH; nullopt when there is none.
std::optional<std::string> git_program();

// Runs `<git> --git-dir <git_dir> pack-objects` with `objects` on its input
// and returns the path (without ".pack") of the pack it wrote in `pack_dir`,
// fsynced with its index and the directory when `durable`. `threads` 0: as
// many as git likes (pack.threads). Every object is compressed and its delta
// searched again. An error names what git said.
core::Result<std::string> git_pack_objects(const std::string& git, const std::string& git_dir,
                                           const std::string& pack_dir, const std::vector<NamedObject>& objects,
                                           unsigned threads, bool durable);

}  // namespace gigafab::gitstore
