// A LocalFleet on a new store in a temporary directory, removed with it: the
// fixture of the unit tests that need a real store.
#pragma once

#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <optional>
#include <string>

#include "gitstore/local_fleet.hpp"
#include "gitstore/store.hpp"

namespace gigafab::testing {

struct ScratchFleet {
  std::string dir;
  std::optional<gitstore::LocalFleet> fleet;

  // `name` goes into the directory's name (/tmp/gigafab-unit-<name>-XXXXXX).
  explicit ScratchFleet(const std::string& name) {
    std::string pattern = "/tmp/gigafab-unit-" + name + "-XXXXXX";
    char* made = ::mkdtemp(pattern.data());
    REQUIRE(made != nullptr);
    dir = made;
    auto store = gitstore::Store::init(dir + "/store", gitstore::InitOptions{false}, "tester");
    REQUIRE(store.ok());
    fleet.emplace(std::move(*store), "tester", std::nullopt);
  }
  ScratchFleet(const ScratchFleet&) = delete;
  ScratchFleet& operator=(const ScratchFleet&) = delete;
  virtual ~ScratchFleet() {
    fleet.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  // Commits on the state ref (group commits count once).
  std::size_t commits() {
    auto history = fleet->store().history();
    REQUIRE(history.ok());
    return history->size();
  }
};

}  // namespace gigafab::testing
