#include "core/snapshot.hpp"

#include <map>
#include <set>

namespace gigafab::core {

std::string Change::message() const {
  std::string out = summary + "\n";
  if (!trailers.empty()) {
    out += "\n";
    for (const auto& [key, value] : trailers) out += key + ": " + value + "\n";
  }
  return out;
}

Result<std::vector<Snapshot::Entry>> Snapshot::list_with_ids(std::string_view dir) const {
  auto names = list(dir);
  if (!names) return names.error();
  std::vector<Entry> out;
  out.reserve(names->size());
  for (auto& name : *names) out.emplace_back(std::move(name), std::string());
  return out;
}

Result<std::optional<std::string>> Snapshot::read_in(std::string_view dir, std::string_view,
                                                    std::string_view name) const {
  std::string path(dir);
  path += '/';
  path += name;
  return read(path);
}

Result<void> Snapshot::visit(std::string_view dir, const Visitor& visitor) const {
  auto names = list(dir);
  if (!names) return names.error();
  for (const auto& name : *names) {
    if (!visitor(name)) break;
  }
  return {};
}

Result<std::string> Snapshot::id_of(std::string_view dir, std::string_view name) const {
  auto entries = list_with_ids(dir);
  if (!entries) return entries.error();
  for (auto& [entry, id] : *entries) {
    if (entry == name) return std::move(id);
  }
  return std::string();
}

Result<std::optional<std::string>> MemorySnapshot::read(std::string_view path) const {
  auto it = m_files.find(std::string(path));
  if (it == m_files.end()) return std::optional<std::string>{};
  return std::optional<std::string>{it->second};
}

Result<std::vector<std::string>> MemorySnapshot::list(std::string_view dir) const {
  std::string prefix = std::string(dir) + "/";
  std::set<std::string> names;
  for (auto it = m_files.lower_bound(prefix); it != m_files.end() && it->first.starts_with(prefix); ++it) {
    std::string rest = it->first.substr(prefix.size());
    names.insert(rest.substr(0, rest.find('/')));
  }
  return std::vector<std::string>(names.begin(), names.end());
}

void MemorySnapshot::apply(const Change& change) {
  for (const auto& [path, content] : change.writes) {
    if (content) {
      m_files[path] = *content;
    } else {
      m_files.erase(path);
    }
  }
}

Result<std::optional<std::string>> OverlaySnapshot::read(std::string_view path) const {
  auto it = m_change.writes.find(std::string(path));
  if (it != m_change.writes.end()) return it->second;
  return m_base.read(path);
}

Result<void> OverlaySnapshot::visit(std::string_view dir, const Visitor& visitor) const {
  std::string prefix = std::string(dir) + "/";
  auto it = m_change.writes.lower_bound(prefix);
  if (it == m_change.writes.end() || !it->first.starts_with(prefix)) return m_base.visit(dir, visitor);
  return Snapshot::visit(dir, visitor);  // edited: the merged listing
}

Result<std::vector<std::string>> OverlaySnapshot::list(std::string_view dir) const {
  auto base = m_base.list(dir);
  if (!base) return base.error();
  std::string prefix = std::string(dir) + "/";
  auto it = m_change.writes.lower_bound(prefix);
  if (it == m_change.writes.end() || !it->first.starts_with(prefix)) return base;  // untouched: as it was
  // What the change does to the entries of `dir`: name -> present.
  std::map<std::string, bool> edits;
  for (; it != m_change.writes.end() && it->first.starts_with(prefix); ++it) {
    std::string rest = it->first.substr(prefix.size());
    std::size_t slash = rest.find('/');
    if (slash != std::string::npos) {
      edits[rest.substr(0, slash)] = true;  // a directory with something written in it
    } else {
      edits[rest] = it->second.has_value();
    }
  }
  // Both are sorted: merge them in one pass.
  std::vector<std::string> out;
  out.reserve(base->size() + edits.size());
  auto e = edits.begin();
  for (auto& name : *base) {
    for (; e != edits.end() && e->first < name; ++e) {
      if (e->second) out.push_back(e->first);
    }
    if (e != edits.end() && e->first == name) {
      if (e->second) out.push_back(std::move(name));
      ++e;
      continue;
    }
    out.push_back(std::move(name));
  }
  for (; e != edits.end(); ++e) {
    if (e->second) out.push_back(e->first);
  }
  return out;
}

}  // namespace gigafab::core
