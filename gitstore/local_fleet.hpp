// The in-process Fleet: core operations run against a git store on this
// machine. Used by the CLI without --api, and by `gigafab serve`.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "core/catalog.hpp"
#include "core/fleet.hpp"
#include "gitstore/store.hpp"

namespace gigafab::gitstore {

// The catalog a fleet resolves profile names against: the builtin profiles,
// overlaid by the *.md files of `dir` (GIGAFAB_PROFILES) when given.
Result<core::Catalog> load_catalog(const std::optional<std::string>& dir);

class LocalFleet final : public core::Fleet {
 public:
  // `actor` is recorded in every commit this fleet writes.
  LocalFleet(Store store, std::string actor, std::optional<std::string> profiles_dir);

  Result<core::Submitted> submit(const core::SubmitInput& input) override;
  Result<std::vector<core::Job>> list(const core::JobFilter& filter) override;
  Result<core::JobDetail> show(const std::string& id, const std::string& product) override;
  Result<std::vector<core::AuditEntry>> log(const std::optional<std::string>& job,
                                            const std::string& product) override;

  Store& store() { return m_store; }

 private:
  Result<const core::Catalog*> catalog();

  Store m_store;
  std::string m_actor;
  std::optional<std::string> m_profiles_dir;
  std::optional<core::Catalog> m_catalog;
};

}  // namespace gigafab::gitstore
